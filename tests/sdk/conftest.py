"""Fixtures of the recorder tests: ledgers opened with chosen settings, databases shared by
several processes, and small helpers to run writer scripts in subprocesses."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import modelward

from ..conftest import database_url


@pytest.fixture
def open_ledger(backend_url, tmp_path):
    """``open_ledger(**settings)`` opens a ledger on the test's backend; all are closed after."""
    opened = []

    def make(**settings):
        led = modelward.open(str(tmp_path / "home"), database_url=backend_url, **settings)
        opened.append(led)
        return led

    yield make
    for led in opened:
        led.close()


@pytest.fixture(params=["sqlite-file", "postgres"])
def shared_url(request, tmp_path):
    """A database several processes can open at once."""
    return database_url(request.param, tmp_path, request)


def wait_for(predicate, timeout: float = 10.0, every: float = 0.01):
    """Poll until ``predicate()`` is truthy; returns its value or fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {predicate}")
        time.sleep(every)


def python(script: str, *args, **popen) -> subprocess.Popen:
    """Start ``script`` in a fresh interpreter (the same venv) with ``args`` in sys.argv[1:]."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], text=True, **popen)
