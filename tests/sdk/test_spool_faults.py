"""Durable mode on a failing disk: every spool append checks its length and its fsync, a
failed append raises to the caller of record() and is never acknowledged, and whatever was
acknowledged survives a SIGKILL. Faults come from a real full tmpfs (when this process may
mount one) and from a segment file that fails on purpose (short writes, ENOSPC, EIO, EACCES
on write and on fsync)."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import uuid

import orjson
import pytest
import sqlalchemy as sa

import modelward
from modelward.errors import StorageError
from modelward.ledger import decisions
from modelward.sdk.recorder import SegmentFile, _Spool, replay_orphaned_spools

from .conftest import python
from .test_processes import ids_in


class FaultyFile(SegmentFile):
    """A real segment file whose next write or fsync fails as told (``arm``)."""

    fault: tuple | None = None  # (call, kind): call "write" or "sync"; kind an errno or "short"

    def write(self, data) -> int:
        if FaultyFile.fault and FaultyFile.fault[0] == "write":
            kind = FaultyFile.fault[1]
            if kind == "short":  # half the bytes land, then no progress at all
                os.write(self.fd, bytes(data[: len(data) // 2]))
                FaultyFile.fault = ("write", "zero")
                return len(data) // 2
            if kind == "zero":
                return 0
            os.write(self.fd, bytes(data[:7]))  # a torn prefix, then the error
            raise OSError(kind, os.strerror(kind))
        return super().write(data)

    def sync(self) -> None:
        if FaultyFile.fault and FaultyFile.fault[0] == "sync":
            raise OSError(FaultyFile.fault[1], os.strerror(FaultyFile.fault[1]))
        super().sync()


class SlowFile(SegmentFile):
    """Writes a few bytes per call: short writes that make progress are completed."""

    def write(self, data) -> int:
        return super().write(data[:5])


def spool_lines(spool_dir) -> list[bytes]:
    lines = []
    for path in sorted(spool_dir.glob("spool-*")):
        lines += [line for line in path.read_bytes().split(b"\n") if line]
    return lines


def stored_ids(led) -> list[str]:
    with led.store.read() as conn:
        return list(conn.execute(sa.text("SELECT id FROM decisions")).scalars())


def release(led) -> None:
    """What a SIGKILL does to the spool: its file (and lock) goes away, its bytes stay."""
    spool = led.recorder._spool
    if spool.fh is not None:
        spool.fh.close()
        spool.fh = None


FAULTS = [("write", "short"), ("write", "zero"), ("write", errno.ENOSPC),
          ("write", errno.EIO), ("write", errno.EACCES), ("sync", errno.ENOSPC),
          ("sync", errno.EIO), ("sync", errno.EACCES)]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f[0]}-{errno.errorcode.get(f[1], f[1])}")
def test_a_failed_append_raises_and_is_never_acknowledged(open_ledger, tmp_path, fault):
    led = open_ledger(recorder_mode="durable", flush_interval="1h", flush_records=1_000_000)
    spool_dir = tmp_path / "home" / "spool"
    led.recorder._spool.file_factory = FaultyFile
    FaultyFile.fault = None
    acked = [led.record(subject=f"a{i}", input_text=f"q{i}") for i in range(3)]
    FaultyFile.fault = fault
    lost = str(uuid.uuid4())
    with pytest.raises(StorageError, match="durable spool: appending to .*spool-.*"
                                           "the decision was not recorded") as info:
        led.record(id=lost, subject="lost", input_text="x" * 200)
    assert info.value.hint and "retried with the same id" in info.value.hint
    FaultyFile.fault = None
    assert led.recorder._queue and lost not in {row[0] for row, _ in led.recorder._queue}
    acked += [led.record(subject=f"b{i}") for i in range(2)]  # a new segment takes over
    assert len(list(spool_dir.glob("spool-*.jsonl"))) == 2
    lines = spool_lines(spool_dir)
    assert [orjson.loads(line)[0][0] for line in lines] == acked  # no torn line glued on
    release(led)
    assert replay_orphaned_spools(led.store, spool_dir) == 5
    assert sorted(stored_ids(led)) == sorted(acked)


def test_short_writes_that_make_progress_are_completed(open_ledger, tmp_path):
    led = open_ledger(recorder_mode="durable", flush_interval="1h", flush_records=1_000_000)
    led.recorder._spool.file_factory = SlowFile
    ids = [led.record(subject=f"s{i}", input_text="y" * 100) for i in range(4)]
    assert [orjson.loads(line)[0][0] for line in spool_lines(tmp_path / "home" / "spool")] == ids
    led.flush()
    assert sorted(stored_ids(led)) == sorted(ids)


def test_an_unusable_spool_directory_is_a_storage_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="durable spool: creating .*file/spool"):
        _Spool(tmp_path / "file" / "spool")


def test_stale_opening_segments_are_recovered_or_removed(open_ledger, tmp_path):
    led = open_ledger()
    spool_dir = tmp_path / "home" / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    # a kill between creating a segment and renaming it: empty
    (spool_dir / "spool-1-0190-00000001.opening").write_bytes(b"")
    # a partial one (written by hand or an older writer): its whole lines are recovered
    rows = [decisions.normalize({"subject": f"o{i}"}) for i in range(2)]
    partial = b"".join(orjson.dumps([r, p]) + b"\n" for r, p in rows) + b'[["torn'
    (spool_dir / "spool-2-0190-00000001.opening").write_bytes(partial)
    # one a live writer holds is left alone
    live = spool_dir / "spool-3-0190-00000001.opening"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert replay_orphaned_spools(led.store, spool_dir) == 2
        assert [p.name for p in spool_dir.iterdir()] == [live.name]
    finally:
        os.close(fd)
    assert replay_orphaned_spools(led.store, spool_dir) == 0
    assert list(spool_dir.iterdir()) == []
    assert sorted(stored_ids(led)) == sorted(r[0] for r, _ in rows)


def test_a_segment_removed_while_being_created_is_created_again(tmp_path):
    class Raced(SegmentFile):
        """A replayer removes the ``.opening`` file before its writer locks it."""
        races = 1

        def __init__(self, path):
            super().__init__(path)
            if Raced.races:
                Raced.races -= 1
                os.unlink(path)

    spool = _Spool(tmp_path / "spool", file_factory=Raced)
    row, payload = decisions.normalize({"subject": "raced"})
    spool.append(row, payload)
    assert [p.suffix for p in (tmp_path / "spool").iterdir()] == [".jsonl"]
    assert os.stat(next((tmp_path / "spool").iterdir())).st_mode & 0o777 == 0o600
    spool.close()
    assert list((tmp_path / "spool").iterdir()) == []


FILLER = """
import sys, modelward
from modelward.errors import StorageError
home, url, spool = sys.argv[1:4]
led = modelward.open(home, database_url=url, recorder_mode="durable", flush_interval="1h",
                     flush_records=1_000_000, spool_dir=spool)
failures = i = 0
def fill(until):
    global failures, i
    failures = 0
    while failures < until:
        i += 1
        try:
            rid = led.record(subject=f"f{i}", input_text="z" * 3000)
        except StorageError as exc:
            failures += 1
            if failures == 1:
                print("ERROR " + str(exc), flush=True)
            continue
        print(rid, flush=True)  # acknowledged: record() has returned
fill(5)                      # the database is slow: everything hangs on the full spool
print("FULL", flush=True)
led.flush()                  # commits free the spool; recording resumes
for _ in range(3):
    print(led.record(subject="after"), flush=True)
fill(3)
print("FULL", flush=True)
sys.stdin.read()
"""


def test_full_disk_acknowledges_nothing_it_did_not_write(shared_url, tmp_path, tiny_tmpfs):
    home = tmp_path / "home"
    modelward.open(str(home), database_url=shared_url).close()
    proc = python(FILLER, home, shared_url, tiny_tmpfs / "spool", stdin=subprocess.PIPE)
    acked, errors, fulls = [], [], 0
    while fulls < 2:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        line = line.strip()
        if line == "FULL":
            fulls += 1
        elif line.startswith("ERROR "):
            errors.append(line)
        else:
            acked.append(line)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stdout.close(), proc.stderr.close(), proc.stdin.close()
    assert len(errors) == 2 and all("No space left on device" in e for e in errors), errors
    assert len(acked) > 200  # about 300 records of 3 kB fill 1 MiB, twice
    for path in (tiny_tmpfs / "spool").glob("spool-*"):  # no torn line glued to a good one
        for raw in path.read_bytes().split(b"\n")[:-1]:
            orjson.loads(raw)
    with modelward.open(str(home), database_url=shared_url, spool_dir=str(tiny_tmpfs / "spool")):
        stored = ids_in(shared_url, tmp_path)
    assert len(stored) == len(acked) and set(stored) == set(acked)
    assert list((tiny_tmpfs / "spool").glob("spool-*")) == []
