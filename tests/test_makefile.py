"""The Makefile as a fresh clone runs it: ``make demo`` installs only what the demo needs
and shows pip's progress; ``make test`` keeps its development stack; ``make shell`` gives
a shell where ``modelward`` runs. (tests/test_demo.py runs the demo itself with nothing
importable beyond the demo's install.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelward._version import __version__

from . import demo_install

DEV_ONLY = {"pytest", "playwright", "schemathesis", "moto", "ruff", "mlflow", "boto3",
            "dask", "distributed", "openai", "psycopg", "obstore", "opentelemetry-sdk"}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def test_make_demo_installs_the_demo_extras_with_progress(tmp_path):
    lines = demo_install.dry_run("demo", tmp_path)
    [install] = demo_install.pip_install_lines(lines)
    assert " -q" not in install and "--quiet" not in install  # pip shows what it fetches
    assert "--progress-bar on" in install
    extras = demo_install.extras_of(install)
    assert extras == ["server"]
    closure = demo_install.closure(extras)
    assert {"fastapi", "uvicorn", "sqlalchemy", "alembic", "typer"} <= closure
    assert not closure & DEV_ONLY, closure & DEV_ONLY
    # the venv is made first, the stamp touched after the install, the demo run last
    assert lines[0] == "test -x .venv/bin/python || python3 -m venv .venv"
    assert lines[-2:] == ["touch .venv/.installed-demo", ".venv/bin/python demo/build.py"]


def test_make_test_still_installs_the_development_stack(tmp_path):
    [install] = demo_install.pip_install_lines(demo_install.dry_run("test", tmp_path))
    assert demo_install.extras_of(install) == ["dev"]
    assert {"pytest", "playwright", "fastapi"} <= demo_install.closure(["dev"])


def test_make_shell_puts_modelward_on_path(tmp_path):
    """`make shell` on an installed checkout: the shell it starts finds `modelward`."""
    work = tmp_path / "clone"
    demo_install.dry_run("shell", tmp_path)  # lays out the build files in work
    script = Path(sys.prefix) / "bin" / "modelward"
    if not script.is_file():
        pytest.skip("no modelward console script in this environment")
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "modelward").symlink_to(script)
    (work / ".venv" / "bin" / "python").symlink_to(sys.executable)  # `test -x` only
    (work / ".venv" / ".installed-demo").touch()  # newer than pyproject.toml: installed
    env = demo_install.make_env()
    env["SHELL"] = "/bin/sh"
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run(["make", "--no-print-directory", "shell"], cwd=work, env=env,
                          input="command -v modelward\nmodelward --version\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "modelward is on PATH in this shell (.venv/bin); `exit` leaves it\n"
        f"{work}/.venv/bin/modelward\n"
        f"modelward {__version__}\n")
