"""Files that hold raw decision text are the owner's alone: ledger.db with its WAL and SHM
files, and the durable recorder's spool segments, are created 0600 (directories 0700)
whatever the process umask, or as ``umask`` (``MODELWARD_UMASK``) says."""

from __future__ import annotations

import os
import stat

import pytest

import modelward
from modelward.errors import ConfigError
from modelward.settings import Settings


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_process_umask():
    old = os.umask(0o022)  # what most shells hand a process
    yield
    os.umask(old)


def _files_while_recording(home, **settings) -> dict[str, int]:
    led = modelward.open(str(home), recorder_mode="durable", **settings)
    try:
        led.record(subject="alice", input_text="my card number is …")
        modes = {p.name.split("-")[0] if p.parent.name == "spool" else p.name: _mode(p)
                 for p in (*home.iterdir(), *(home / "spool").iterdir()) if p.is_file()}
        modes["home/"], modes["spool/"] = _mode(home), _mode(home / "spool")
        led.flush()
    finally:
        led.close()
    return modes


def test_ledger_wal_shm_and_spool_are_owner_only(tmp_path, loose_process_umask):
    modes = _files_while_recording(tmp_path / "home")
    assert {"ledger.db", "ledger.db-wal", "ledger.db-shm", "spool"} <= set(modes)
    for name, mode in modes.items():
        assert mode == (0o700 if name.endswith("/") else 0o600), (name, oct(mode))


def test_modelward_umask_is_honoured(tmp_path, loose_process_umask, monkeypatch):
    monkeypatch.setenv("MODELWARD_UMASK", "027")
    modes = _files_while_recording(tmp_path / "home")
    for name, mode in modes.items():
        assert mode == (0o750 if name.endswith("/") else 0o640), (name, oct(mode))


def test_an_existing_ledger_keeps_its_mode(tmp_path):
    home = tmp_path / "home"
    modelward.open(str(home)).close()
    os.chmod(home / "ledger.db", 0o640)  # its owner chose to share it with a group
    modelward.open(str(home)).close()
    assert _mode(home / "ledger.db") == 0o640


@pytest.mark.parametrize("bad", ["999", "rw", "1000", "-1"])
def test_a_bad_umask_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match="umask"):
        Settings({}, env={"MODELWARD_UMASK": bad})
