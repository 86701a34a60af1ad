"""One real ``modelward serve`` per test module, with small upload and batch limits so an
oversize body is a few MiB (the other limits keep their defaults)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import modelward
from tests.conftest import database_url

from .server import MIB, Target

LIMITS = {"MODELWARD_MAX_BATCH_BODY": str(8 * MIB), "MODELWARD_MAX_UPLOAD": str(8 * MIB)}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    found = Target(tmp_path_factory.mktemp("attacked") / "home", dict(LIMITS)).start()
    yield found
    found.stop()


@pytest.fixture(params=["sqlite-file", "postgres"])
def cli(request, tmp_path):
    """A ledger on a file or PostgreSQL, and ``run(*args)``: the ``modelward`` command on it,
    in a process of its own (what a user's shell runs)."""
    url = database_url(request.param, tmp_path, request)
    home = str(tmp_path / "home")
    led = modelward.open(home, database_url=url)

    def run(*args):
        return subprocess.run(
            [sys.executable, "-c", "from modelward.cli.app import main; main()",
             "--home", home, "--database-url", url, *args],
            cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ), timeout=120)

    yield led, run
    led.close()
