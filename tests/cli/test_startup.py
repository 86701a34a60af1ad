"""The CLI starts fast: `modelward --help` imports no command module, no SQLAlchemy and no
Alembic; a ledger command imports only its own module and no Alembic. The table of
top-level commands that makes this possible cannot drift from what the modules register."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import typer
import typer.main
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from modelward.cli import app as cli_app
from modelward.ledger.engine import MIGRATIONS, head_revision


def _loaded_after(argv: list[str], tmp_path) -> set[str]:
    code = textwrap.dedent(f"""
        import sys
        from modelward.cli.app import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        print("\\n".join(sorted(sys.modules)), file=sys.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    return set(proc.stderr.split())


def test_help_imports_no_command_module_and_no_database_library(tmp_path):
    loaded = _loaded_after(["--help"], tmp_path)
    assert "modelward.cli.app" in loaded
    commands = {f"modelward.cli.{module}" for module, _ in cli_app.COMMANDS.values()}
    assert loaded & commands == set()
    assert not {m for m in loaded if m.split(".")[0] in ("sqlalchemy", "alembic", "numpy")}
    # help is click's plain text: Typer's Rich rendering would import Rich's whole stack
    assert not {m for m in loaded if m.startswith(("typer.rich_utils", "rich.markdown"))}


def test_every_command_prints_plain_help():
    """Every group and command of the tree was made by cli._group.typer_app (plain-text help
    and usage errors): one made by typer.Typer() would bring Rich's rendering back."""
    seen = 0
    for name in cli_app.COMMANDS:
        stack = [cli_app._load(name)]
        while stack:
            command = stack.pop()
            seen += 1
            assert command.rich_markup_mode is None, command.name
            stack.extend(getattr(command, "commands", {}).values())
    assert seen > len(cli_app.COMMANDS)
    result = CliRunner().invoke(cli_app.app, ["alias", "--help"])
    assert result.exit_code == 0 and "Commands:" in result.output and "╭" not in result.output


def test_a_ledger_command_imports_its_module_only_and_no_alembic(tmp_path):
    home = str(tmp_path / "home")
    CliRunner().invoke(cli_app.app, ["--home", home, "init"], catch_exceptions=False)
    loaded = _loaded_after(["--home", home, "alias", "list"], tmp_path)
    assert "modelward.cli.aliases" in loaded
    others = {f"modelward.cli.{module}" for module, _ in cli_app.COMMANDS.values()} - {
        "modelward.cli.aliases"}
    assert loaded & others == set()
    assert not {m for m in loaded if m.split(".")[0] == "alembic"}


def test_the_command_table_matches_what_the_modules_register():
    registered: dict[str, str] = {}
    for module in sorted({m for m, _ in cli_app.COMMANDS.values()}):
        holder = typer.Typer()
        importlib.import_module(f"modelward.cli.{module}").register(holder)
        for name, command in typer.main.get_group(holder).commands.items():
            assert name not in registered, f"{name} registered by {registered[name]} and {module}"
            registered[name] = module
            assert name in cli_app.COMMANDS, f"{module} registers {name!r}: add it to COMMANDS"
            assert cli_app.COMMANDS[name][0] == module
            assert cli_app.COMMANDS[name][1] == command.get_short_help_str(200), name
    assert set(registered) == set(cli_app.COMMANDS)


def test_help_lists_every_command_and_a_command_still_runs(tmp_path):
    result = CliRunner().invoke(cli_app.app, ["--help"])
    assert result.exit_code == 0
    for name in cli_app.COMMANDS:
        assert name in result.output
    home = str(tmp_path / "home")
    ran = CliRunner().invoke(cli_app.app, ["--home", home, "init"])
    assert ran.exit_code == 0, ran.output
    unknown = CliRunner().invoke(cli_app.app, ["--home", home, "no-such-command"])
    assert unknown.exit_code == 2 and "no-such-command" in unknown.output


def test_the_head_revision_read_without_alembic_is_alembics():
    assert head_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
