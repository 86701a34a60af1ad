"""Every command and setting is documented; a test fails when one is not."""

from __future__ import annotations

from pathlib import Path

from typer import _click as click
from typer.main import get_command

from modelward.cli.app import app
from modelward.settings import SETTINGS, settings_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _command_paths(cmd, prefix=()):
    if hasattr(cmd, "list_commands"):  # a group (the root loads its commands on demand)
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from _command_paths(cmd.get_command(ctx, name), prefix + (name,))
    elif prefix:
        yield " ".join(prefix)


def test_every_command_is_documented():
    text = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    paths = list(_command_paths(get_command(app)))
    assert len(paths) > 40
    missing = [p for p in paths if f"modelward {p}" not in text]
    assert missing == [], f"commands with no mention in docs/: {missing}"


def test_settings_reference_is_generated_and_current():
    current = (DOCS / "settings.md").read_text()
    assert current == settings_markdown(), "run `python -m modelward.settings > docs/settings.md`"
    for s in SETTINGS:
        assert f"`{s.env}`" in current and s.help
