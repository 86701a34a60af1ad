"""What a newcomer meets first, run as they would run it (a subprocess of the CLI):
``--version``, and output free of library log lines unless ``--verbose`` asks for them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from modelward._version import __version__

CLI = [sys.executable, "-m", "modelward.cli.app"]


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODELWARD_", "MLFLOW_"))}
    env.update(MODELWARD_HOME=str(tmp_path / "home"), **extra)
    return env


def _run(args, tmp_path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=120, **kw)


def test_version_prints_the_package_version_without_a_ledger(tmp_path):
    proc = _run([*CLI, "--version"], tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"modelward {__version__}\n", "")
    assert not (tmp_path / "home").exists()  # nothing opened or created


def test_init_is_quiet_and_verbose_shows_the_migrations(tmp_path):
    quiet = _run([*CLI, "init"], tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.startswith("initialised ledger at sqlite:///")
    (tmp_path / "home").rename(tmp_path / "first")
    loud = _run([*CLI, "--verbose", "init"], tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert loud.stdout.startswith("initialised ledger at sqlite:///")  # stdout unchanged
    assert "INFO alembic.runtime.migration: Running upgrade  -> 0001" in loud.stderr


def test_a_host_application_logging_info_gets_no_alembic_lines(tmp_path):
    """Serving code that logs at INFO opens a fresh ledger: its log holds no migration
    chatter, unless it gave the alembic logger a level of its own."""
    script = textwrap.dedent("""
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
        if sys.argv[1] == "alembic-info":
            logging.getLogger("alembic").setLevel(logging.INFO)
        import modelward
        modelward.open(sys.argv[2]).close()
        logging.getLogger("app").info("ready")
        print(logging.getLogger("alembic").level)
    """)
    host = _run([sys.executable, "-c", script, "default", str(tmp_path / "a")], tmp_path)
    assert host.returncode == 0, host.stderr
    assert host.stderr == "app ready\n" and host.stdout == "0\n"  # level restored to NOTSET
    chosen = _run([sys.executable, "-c", script, "alembic-info", str(tmp_path / "b")], tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert "alembic.runtime.migration Running upgrade  -> 0001" in chosen.stderr
    assert chosen.stdout == "20\n"


@pytest.mark.slow
def test_mlflow_store_messages_only_with_verbose(tmp_path):
    pytest.importorskip("mlflow")
    assert _run([*CLI, "init"], tmp_path).returncode == 0
    args = [*CLI, "import", "mlflow", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    quiet = _run(args, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == ("0 models, 0 versions: 0 registered, 0 already imported; "
                            "0 alias moves\n")
    (tmp_path / "mlflow.db").unlink()
    loud = _run([args[0], *args[1:3], "--verbose", *args[3:]], tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert "INFO mlflow.store.db.utils: Creating initial MLflow database tables" in loud.stderr


def test_an_in_process_run_leaves_logging_and_the_environment_as_they_were(tmp_path,
                                                                           monkeypatch):
    import logging

    from typer.testing import CliRunner

    from modelward.cli.app import app

    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("alembic").level)
    result = CliRunner().invoke(app, ["--verbose", "--home", str(tmp_path / "h"), "init"])
    assert result.exit_code == 0, result.output
    assert "MLFLOW_LOGGING_LEVEL" not in os.environ
    assert (list(root.handlers), root.level, logging.getLogger("alembic").level) == before
