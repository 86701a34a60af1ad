"""The recorder in one process, on every backend: when it commits, what flush/close promise,
back-pressure, and riding out a database that is briefly unavailable."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from modelward.errors import SchemaError
from modelward.ledger import chain, decisions
from modelward.ledger.schema import chain_blocks
from modelward.sdk.recorder import _Spool, replay_orphaned_spools

from .conftest import wait_for


def count(led) -> int:
    with led.store.read() as conn:
        return decisions.count(conn)


def block_sizes(led) -> list[int]:
    with led.store.read() as conn:
        return list(conn.execute(sa.select(chain_blocks.c.count)
                                 .order_by(chain_blocks.c.number)).scalars())


def verified(led) -> chain.VerifyReport:
    with led.store.read() as conn:
        report = chain.verify(conn)
    assert report.ok, report.problems
    return report


def test_commits_by_interval_without_flush(open_ledger):
    led = open_ledger(flush_interval="100ms", flush_records=100_000)
    ids = [led.record(subject=f"u{i}") for i in range(7)]
    start = time.monotonic()
    wait_for(lambda: count(led) == 7, timeout=5)
    assert time.monotonic() - start < 5
    with led.store.read() as conn:
        assert {d.id for d in decisions.search(conn)} == set(ids)
    assert verified(led).decisions == 7


def test_commits_by_record_count(open_ledger):
    led = open_ledger(flush_interval="1h", flush_records=100)  # the interval never fires
    for i in range(99):
        led.record(subject=f"u{i}")
    time.sleep(0.3)
    assert count(led) == 0  # under flush_records, and the interval is an hour away
    for i in range(99, 250):
        led.record(subject=f"u{i}")
    # only a full batch wakes the thread: at most flush_records - 1 may wait for the interval
    wait_for(lambda: count(led) >= 250 - 99, timeout=10)
    led.flush()
    assert count(led) == 250
    assert max(block_sizes(led)) <= 100  # flush_records is also the largest chain block
    assert sum(block_sizes(led)) == 250 and verified(led).decisions == 250


def test_flush_and_close_commit_everything(open_ledger):
    led = open_ledger(flush_interval="1h", flush_records=1_000_000)
    for i in range(3000):
        led.record(subject=f"u{i}", input_text=f"q{i}")
    assert count(led) == 0
    led.flush()
    assert count(led) == 3000
    led.record(subject="last")
    led.recorder.close()
    assert count(led) == 3001 and verified(led).decisions == 3001


def test_context_manager_closes_and_commits(backend_url, tmp_path):
    import modelward

    if backend_url == "sqlite://":
        pytest.skip("an in-memory database does not outlive its ledger")
    with modelward.open(str(tmp_path / "h"), database_url=backend_url, flush_interval="1h") as led:
        rid = led.record(subject="ctx")
    with modelward.open(str(tmp_path / "h"), database_url=backend_url) as led:
        with led.store.read() as conn:
            assert decisions.get(conn, rid).subject == "ctx"


def test_record_from_many_threads(open_ledger):
    led = open_ledger(flush_interval="5ms", flush_records=64)
    ids: list[str] = []
    lock = threading.Lock()

    def work(n):
        mine = [led.record(subject=f"t{n}", segments={"i": i}) for i in range(500)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    led.flush()
    assert len(set(ids)) == 4000 and count(led) == 4000
    assert verified(led).decisions == 4000


def test_back_pressure_bounds_the_queue(open_ledger):
    led = open_ledger(flush_interval="1h", flush_records=1_000_000, queue_limit=50)
    for i in range(1000):
        led.record(subject=f"u{i}")
        assert len(led.recorder._queue) <= 50
    led.flush()
    assert count(led) == 1000 and verified(led).decisions == 1000


def test_keeps_its_queue_while_the_database_fails(open_ledger):
    """The decisions table vanishes for a second (a botched maintenance): commits fail, the
    recorder keeps everything queued and retries, then commits it all once, in order."""
    led = open_ledger(flush_interval="20ms", flush_records=50)
    first = [led.record(subject="before") for _ in range(30)]
    led.flush()
    with led.store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE decisions RENAME TO decisions_away")
    during = [led.record(subject="during") for _ in range(300)]
    wait_for(lambda: led.recorder.failures > 0, timeout=5)
    assert isinstance(led.recorder.last_error, SchemaError)
    time.sleep(0.3)
    with led.store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE decisions_away RENAME TO decisions")
    after = [led.record(subject="after") for _ in range(30)]
    led.flush(timeout=30)
    assert count(led) == 360
    with led.store.read() as conn:
        ordered = list(conn.execute(sa.text("SELECT id FROM decisions ORDER BY block, pos")).scalars())
    assert ordered == first + during + after  # retried in order, never duplicated
    assert verified(led).decisions == 360


def test_spool_left_by_a_dead_process_is_replayed_once(open_ledger, tmp_path):
    led = open_ledger()
    rows = [decisions.normalize({"subject": f"s{i}", "input_text": f"q{i}"}) for i in range(20)]
    spool_dir = tmp_path / "home" / "spool"
    spool = _Spool(spool_dir)
    for row, payload in rows:
        spool.append(row, payload)
    spool.fh.write(b'[["torn')  # the write the crash interrupted; record() never returned
    spool.fh.close()  # the process is gone: its lock with it
    decisions.append(led.store, [rows[0][0]])  # one of them was committed before the crash
    assert replay_orphaned_spools(led.store, spool_dir) == 19
    assert list(spool_dir.glob("spool-*")) == []
    assert replay_orphaned_spools(led.store, spool_dir) == 0
    assert count(led) == 20
    with led.store.read() as conn:
        assert decisions.payload(conn, rows[5][0][0]).input_text == "q5"
    verified(led)


def test_a_live_writers_spool_is_left_alone(open_ledger, tmp_path):
    led = open_ledger()
    spool = _Spool(tmp_path / "home" / "spool")
    row, payload = decisions.normalize({"subject": "live"})
    spool.append(row, payload)
    assert replay_orphaned_spools(led.store, tmp_path / "home" / "spool") == 0
    assert count(led) == 0 and len(list((tmp_path / "home" / "spool").glob("spool-*.jsonl"))) == 1
    spool.close()
    assert list((tmp_path / "home" / "spool").glob("spool-*")) == []


def test_durable_mode_keeps_one_spool_segment(open_ledger, tmp_path):
    led = open_ledger(recorder_mode="durable", flush_interval="5ms")
    spool_dir = tmp_path / "home" / "spool"
    for i in range(60):
        led.record(subject=f"d{i}")
        if i % 3 == 0:
            led.flush()
    led.flush()
    assert count(led) == 60
    assert len(list(spool_dir.glob("spool-*.jsonl"))) <= 1  # committed segments are removed
    led.recorder.close()
    assert list(spool_dir.glob("spool-*")) == []


def test_closed_recorder_refuses(open_ledger):
    led = open_ledger()
    rec = led.recorder
    rec.close()
    with pytest.raises(RuntimeError, match="the recorder is closed"):
        rec.record({"subject": "late"})
