"""`modelward register` on a file it cannot read, or into a blob store that is full: one
error line and exit 2, never a traceback, and no artifact recorded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import modelward


def _cli(home, *args, env=None):
    return subprocess.run([sys.executable, "-m", "modelward.cli.app", "--home", str(home),
                           *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _count(home) -> int:
    with modelward.open(str(home), create=False) as led, led.store.read() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM artifacts").scalar()


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_a_file_that_fails_to_read_is_one_error(tmp_path):
    home = tmp_path / "home"
    assert _cli(home, "init").returncode == 0
    done = _cli(home, "register", "model", "/proc/self/mem", "--name", "x")  # read: EIO
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot read /proc/self/mem: Input/output error" in done.stderr
    assert _count(home) == 0


def test_a_full_blob_store_is_one_error_and_records_nothing(tmp_path, tiny_tmpfs):
    home = tmp_path / "home"
    env = {"MODELWARD_BLOB_URL": str(tiny_tmpfs / "blobs")}
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(3 << 20))  # 3 MiB into a 1 MiB disk
    assert _cli(home, "init", env=env).returncode == 0
    done = _cli(home, "register", "model", str(big), "--name", "big", env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot store" in done.stderr and "No space left on device" in done.stderr
    assert _count(home) == 0
    assert not [p for p in (tiny_tmpfs / "blobs").rglob("*") if p.is_file()]  # nothing kept
