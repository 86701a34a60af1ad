"""The recorder across real processes on SQLite files and PostgreSQL: SIGKILL in durable mode,
concurrent writers, exit without close, and a database that is briefly locked or cut off."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

import modelward
from modelward.ledger import chain, decisions
from modelward.ledger.engine import Store
from modelward.settings import Settings

from .conftest import python, wait_for

WRITER = """
import sys, modelward
home, url, interval, records = sys.argv[1:5]
led = modelward.open(home, database_url=url, recorder_mode="durable", flush_interval=interval,
                     flush_records=int(records))
print("ready", flush=True)
i = 0
while True:
    rid = led.record(subject=f"k{i}", input_text=f"question {i}", segments={"i": i},
                     gate={"threshold": 0.5, "candidates": 10, "passed": i % 10})
    sys.stdout.write(rid + "\\n")  # acknowledged: record() has returned
    sys.stdout.flush()
    i += 1
"""


def ids_in(url, tmp_path) -> list[str]:
    """Every decision id, read without opening a Ledger (which would replay spools)."""
    store = Store(Settings({"home": str(tmp_path / "reader"), "database_url": url}, env={}))
    try:
        with store.read() as conn:
            return list(conn.execute(sa.text("SELECT id FROM decisions")).scalars())
    finally:
        store.dispose()


def verified(led) -> chain.VerifyReport:
    with led.store.read() as conn:
        report = chain.verify(conn)
    assert report.ok, report.problems
    return report


@pytest.mark.parametrize("interval,records", [("1h", 1_000_000), ("10ms", 25)],
                         ids=["all-in-spool", "mid-commit"])
def test_durable_mode_survives_sigkill(shared_url, tmp_path, interval, records):
    home = tmp_path / "home"
    modelward.open(str(home), database_url=shared_url).close()  # initialise
    proc = python(WRITER, home, shared_url, interval, records)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    acked = []
    while len(acked) < 400:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    # read through the same buffered stream (communicate() would skip its read-ahead)
    rest = proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()
    acked += [line for line in rest.split("\n") if len(line) == 36]  # whole lines only
    before = ids_in(shared_url, tmp_path)
    if interval == "1h":
        assert before == []  # nothing was committed: everything hangs on the spool
    with modelward.open(str(home), database_url=shared_url) as led:  # replays the spool
        after = ids_in(shared_url, tmp_path)
        assert set(acked) <= set(after)  # every acknowledged decision is there...
        assert len(after) == len(set(after))  # ...exactly once...
        assert len(after) <= len(acked) + 1  # ...plus at most the one record() in flight
        assert verified(led).decisions == len(after)
        with led.store.read() as conn:
            d = decisions.get(conn, acked[-1])
            assert d.subject == f"k{len(acked) - 1}" and d.gate_passed == (len(acked) - 1) % 10
            assert decisions.payload(conn, acked[0]).input_text == "question 0"
    assert list((home / "spool").glob("spool-*.jsonl")) == []
    with modelward.open(str(home), database_url=shared_url) as led:  # a second open: no-op
        assert len(ids_in(shared_url, tmp_path)) == len(after)


CONCURRENT = """
import sys, modelward
home, url, n, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
led = modelward.open(home, database_url=url, create=False, flush_records=500)
ids = [led.record(subject=f"p{n}-{i}", segments={"proc": n, "i": i}, input_text=f"t{i}")
       for i in range(count)]
led.close()
print(len(set(ids)))
"""


def test_four_processes_record_at_once(shared_url, tmp_path):
    home, per = tmp_path / "home", 4000
    modelward.open(str(home), database_url=shared_url).close()
    procs = [python(CONCURRENT, home, shared_url, n, per) for n in range(4)]
    outs = [p.communicate(timeout=150) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    assert [o.strip() for o, _ in outs] == [str(per)] * 4
    assert [e for _, e in outs] == [""] * 4  # no retries, no warnings, nothing raised
    with modelward.open(str(home), database_url=shared_url) as led:
        report = verified(led)
        assert report.decisions == 4 * per
        with led.store.read() as conn:
            subjects = conn.execute(sa.text("SELECT COUNT(DISTINCT subject) FROM decisions")).scalar()
        assert subjects == 4 * per


EXIT_WITHOUT_CLOSE = """
import sys, modelward
led = modelward.open(sys.argv[1], database_url=sys.argv[2], flush_interval="1h",
                     flush_records=1000000)
for i in range(5000):
    led.record(subject=f"e{i}")
print("queued", flush=True)
"""


def test_batched_mode_commits_at_exit(shared_url, tmp_path):
    home = tmp_path / "home"
    proc = python(EXIT_WITHOUT_CLOSE, home, shared_url)
    out, errors = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "queued\n", errors
    assert len(ids_in(shared_url, tmp_path)) == 5000


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_recorder_rides_out_a_locked_sqlite_file(tmp_path):
    db = tmp_path / "ledger.db"
    with modelward.open(str(tmp_path / "home"), database_url=f"sqlite:///{db}",
                        flush_interval="10ms") as led:
        first = [led.record(subject="before") for _ in range(50)]
        led.flush()
        locker = python(LOCKER, db, 1.5)
        assert locker.stdout.readline() == "locked\n"
        locked_at = time.monotonic()
        t0 = time.perf_counter()
        during = [led.record(subject="during") for _ in range(500)]
        assert time.perf_counter() - t0 < 1.0  # serving is not held up by the lock
        time.sleep(0.3)
        assert len(ids_in(f"sqlite:///{db}", tmp_path)) == 50  # nothing got through yet
        assert len(led.recorder._queue) + led.recorder._pending == 500
        led.flush(timeout=30)
        assert time.monotonic() - locked_at >= 1.4  # committed only once the lock was gone
        locker.communicate(timeout=10)
        assert locker.returncode == 0
        assert sorted(ids_in(f"sqlite:///{db}", tmp_path)) == sorted(first + during)
        assert verified(led).decisions == 550


def test_recorder_rides_out_dropped_postgres_connections(pg_url, tmp_path):
    """A failover or a proxy restart kills every connection mid-stream: transactions in
    flight fail, the recorder retries, and nothing is lost or doubled."""
    app = "mw_test_" + uuid.uuid4().hex[:10]
    url = sa.make_url(pg_url).update_query_dict({"application_name": app}).render_as_string(
        hide_password=False)
    admin = sa.create_engine(pg_url)
    with modelward.open(str(tmp_path / "home"), database_url=url, flush_interval="5ms",
                        flush_records=200) as led:
        ids: list[str] = []
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                ids.append(led.record(subject="s", segments={"n": len(ids)}))
                time.sleep(0.0002)

        server = threading.Thread(target=serve)
        server.start()
        killed = 0
        try:
            for _ in range(4):
                time.sleep(0.15)
                with admin.begin() as conn:  # only this test's connections
                    killed += conn.execute(sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :app"), {"app": app}).scalar()
        finally:
            stop.set()
            server.join()
        assert killed >= 1
        led.flush(timeout=60)
        stored = ids_in(pg_url, tmp_path)
        assert sorted(stored) == sorted(ids) and len(ids) > 100
        assert verified(led).decisions == len(ids)
    admin.dispose()


def test_recorder_waits_out_a_locked_postgres_table(pg_url, tmp_path):
    with modelward.open(str(tmp_path / "home"), database_url=pg_url, flush_interval="5ms") as led:
        led.record(subject="warm-up")
        led.flush()
        admin = sa.create_engine(pg_url)
        holder = admin.connect()
        tx = holder.begin()
        holder.exec_driver_sql("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
        during = [led.record(subject="during") for _ in range(300)]
        time.sleep(0.5)
        assert len(led.recorder._queue) + led.recorder._pending == 300
        tx.commit()
        holder.close()
        led.flush(timeout=30)
        assert len(ids_in(pg_url, tmp_path)) == 301 and set(during) <= set(ids_in(pg_url, tmp_path))
        assert verified(led).decisions == 301
        admin.dispose()


def test_wait_for_helper_fails_loudly():
    with pytest.raises(AssertionError, match="not true after"):
        wait_for(lambda: False, timeout=0.05)
