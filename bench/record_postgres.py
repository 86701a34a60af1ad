"""Recording decisions into PostgreSQL: the recorder against raw executemany and raw COPY.

Figures (medians of ``--repeats`` runs, interleaved so noise hits each side alike), all on
the PostgreSQL at ``--database-url`` (default: the local test database), each run in a fresh
schema:

* ``decisions_per_s`` — N realistic ``ledger.record()`` calls plus the final ``flush()``:
  validation, chain hashing, blocks of ``flush_records`` whose ids are claimed in
  ``decision_ids`` (client-made ids stay idempotent) and whose rows then go by binary COPY
  straight into the partitioned table (ledger/pgcopy.py);
* ``executemany_path_decisions_per_s`` — the same recorder with the bulk path switched off
  (every block by psycopg ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``): what
  it wrote before;
* ``raw_executemany_rows_per_s`` / ``raw_copy_rows_per_s`` — the limits: the identical rows
  into the decisions table of a fresh ledger (partitioned by month: same types, keys,
  indexes, partitions), in
  transactions of ``flush_records`` rows, by psycopg ``executemany`` and by binary ``COPY``;
  no validation, no hashing, no thread, no deduplication;
* ``ratio_vs_raw_copy`` — ``decisions_per_s`` / ``raw_copy_rows_per_s`` (target >= 0.6);
* ``locked_path_decisions_per_s`` / ``locked_path_ratio_vs_raw_copy`` — the recorder with
  the chain's lock taken first thing (``decisions.LATE_LOCK = False``: every step of a block
  under it, about eleven round trips), the path before the late lock, in the same run;
* ``writers_<k>_decisions_per_s`` for k in ``--writers`` (default 1 2 4 8) — k processes,
  each with its own ledger handle on one PostgreSQL ledger, record N/k decisions each at
  once (started together, timed from the start signal to the last flush), and
  ``writers_<k>_vs_<first>`` the scaling; blocks are numbered in order under one advisory
  lock, taken late (ids claimed, keys fetched, rows hashed and encoded before it), so this
  shows how far the writers overlap. The chain must verify afterwards. With
  ``--locked-path`` the same runs with the lock taken first (``locked_path_writers_…``),
  interleaved. ``writers_<k>_block_<phase>_ms``: medians per block of the time before the
  lock, waiting for it (with the head read) and holding it (COPY, seal, rollups, commit),
  and on the locked path the part of the block under the lock before its commit.
  ``raw_copy_writers_<k>_rows_per_s`` / ``raw_copy_writers_<k>_vs_<first>`` — the limit
  for that scaling: k processes COPYing a 1/k share each of the identical rows into one
  fresh ledger's decisions table, started together the same way (on a machine with few
  cores, raw COPY stops scaling too); ``writers_<k>_ratio_vs_raw_copy_writers`` — the
  recorder's k writers against raw COPY's k writers, per repeat.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import _common as c
from record import SEGMENTS, Workload

BENCH = "record_postgres"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Schema:
    """A fresh schema on the server, dropped afterwards; ``url`` points into it."""

    def __init__(self, base: str) -> None:
        import sqlalchemy as sa

        self.base = base
        self.name = "mw_bench_" + uuid.uuid4().hex[:10]
        self.admin = sa.create_engine(base)
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {self.name}")
        self.url = sa.make_url(base).update_query_dict(
            {"options": f"-csearch_path={self.name}", "application_name": self.name}
        ).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {self.name} CASCADE")
        self.admin.dispose()

    def backends(self) -> list[int]:
        """The server processes of this schema's connections (named after it)."""
        with self.admin.connect() as conn:
            return list(conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (self.name,)).scalars())


_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(pids) -> dict[int, float] | None:
    """CPU seconds (user + system) of each server process, read from /proc: a server on this
    machine (None when it is elsewhere or unreadable)."""
    out = {}
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None
    return out


def cpu_spent(before: dict | None, after: dict | None) -> float | None:
    if before is None or after is None:
        return None
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def run_modelward(base: str, work: Workload, n: int, *, bulk: bool, tmp,
                  late: bool = True, cpu: dict | None = None) -> tuple[float, list]:
    import modelward
    from modelward.ledger import aliases, artifacts
    from modelward.ledger import decisions as ledger_decisions

    schema = Schema(base)
    from modelward.ledger import pgcopy

    saved = pgcopy.COPY_MIN
    pgcopy.COPY_MIN = saved if bulk else 1 << 62
    ledger_decisions.LATE_LOCK = late and bulk
    try:
        ledger = modelward.open(str(tmp / schema.name), database_url=schema.url)
        store = ledger.store
        model = artifacts.register_bytes(store, "model", b"weights-of-chat-v1", name="chat").artifact
        prompt = artifacts.register_bytes(store, "prompt", b"You are a support agent. {{q}}",
                                          name="support").artifact
        with store.write() as conn:
            aliases.set_alias(conn, "chat/v1", model.digest)
            aliases.set_alias(conn, "prompt/support@production", prompt.digest)
        uses = [ledger.resolve("chat/v1"), ledger.resolve("prompt/support@production")]
        record = ledger.record
        ledger.recorder  # start the thread outside the timed region  # noqa: B018
        server0 = server_cpu(schema.backends())
        client0 = time.process_time()
        t0 = time.perf_counter()
        for i in range(n):
            record(uses=uses, subject=work.subjects[i % 5000], input_digest=work.inputs[i & 1023],
                   output_digest=work.outputs[(i * 7) & 1023], segments=SEGMENTS[i % 3],
                   gate={"threshold": 0.4, "candidates": 20, "passed": 7 + i % 5})
        ledger.flush()
        seconds = time.perf_counter() - t0
        if cpu is not None:  # every thread of this process, and the server's processes
            cpu["client"] = time.process_time() - client0
            cpu["server"] = cpu_spent(server0, server_cpu(schema.backends()))
        cols = ", ".join(ledger_decisions.COLUMNS)
        with store.read() as conn:
            rows = [tuple(r) for r in conn.exec_driver_sql(
                f"SELECT {cols} FROM decisions ORDER BY block, pos")]
        ledger.close()
    finally:
        pgcopy.COPY_MIN = saved
        ledger_decisions.LATE_LOCK = True
        schema.drop()
    if len(rows) != n:
        raise SystemExit(f"record_postgres: {len(rows)} decisions in the ledger, expected {n}")
    return seconds, rows


def run_raw(base: str, rows: list, batch: int, *, copy: bool, cpu: dict | None = None) -> float:
    import psycopg
    import sqlalchemy as sa

    from modelward.ledger import decisions as ledger_decisions
    from modelward.ledger import pgcopy

    cols = ", ".join(ledger_decisions.COLUMNS)
    schema = Schema(base)
    try:
        # a real ledger's own decisions table (partitioned by month, same keys and indexes),
        # written directly: no id claims, no hashing, no chain
        import modelward

        modelward.open(f"/tmp/{schema.name}", database_url=schema.url).close()
        dsn = sa.make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, options=f"-csearch_path={schema.name}") as db:
            types = [pgcopy.TYPES.get(col, "varchar")
                     for col in ledger_decisions.COLUMNS]
            marks = ", ".join(["%s"] * len(ledger_decisions.COLUMNS))
            server0 = server_cpu([db.info.backend_pid])
            client0 = time.process_time()
            t0 = time.perf_counter()
            for i in range(0, len(rows), batch):
                chunk = rows[i:i + batch]
                with db.cursor() as cur:
                    if copy:
                        with cur.copy(f"COPY decisions ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                            cp.set_types(types)
                            for row in chunk:
                                cp.write_row(row)
                    else:
                        cur.executemany(f"INSERT INTO decisions ({cols}) VALUES ({marks})",
                                        chunk)
                db.commit()
            seconds = time.perf_counter() - t0
            if cpu is not None:
                cpu["client"] = time.process_time() - client0
                cpu["server"] = cpu_spent(server0, server_cpu([db.info.backend_pid]))
            got = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
    finally:
        schema.drop()
    if got != len(rows):
        raise SystemExit(f"record_postgres raw: {got} rows, expected {len(rows)}")
    return seconds


def _together(target, args: list[tuple]) -> tuple[float, list]:
    """Run ``target(*a, ready, start, done)`` for each ``a`` in a process of its own, start
    them together once every one is ready (connected), and return the seconds from the
    start to the last one done, with what each put on ``done``."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, start, done = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, ready, start, done)) for a in args]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    t0 = time.perf_counter()
    start.set()
    ends = [done.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return max(end for end, _ in ends) - t0, ends


def _raw_copy_writer(dsn: str, schema: str, rows: list, batch: int, ready, start,
                     done) -> None:
    import psycopg

    from modelward.ledger import decisions as ledger_decisions
    from modelward.ledger import pgcopy

    cols = ", ".join(ledger_decisions.COLUMNS)
    types = [pgcopy.TYPES.get(col, "varchar") for col in ledger_decisions.COLUMNS]
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as db:
        db.execute("SELECT 1")
        db.commit()
        ready.put(len(rows))
        start.wait()
        for i in range(0, len(rows), batch):
            with db.cursor() as cur:
                with cur.copy(f"COPY decisions ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(types)
                    for row in rows[i:i + batch]:
                        cp.write_row(row)
            db.commit()
    done.put((time.perf_counter(), None))


def run_raw_writers(base: str, rows: list, k: int, batch: int) -> float:
    """Rows per second of ``k`` processes COPYing ``rows`` in all (a 1/k share each, in
    transactions of ``batch``) into one fresh ledger's decisions table: the limit the
    recorder's writer scaling is measured against (no claims, keys, hashing or chain)."""

    import sqlalchemy as sa

    import modelward

    schema = Schema(base)
    try:
        modelward.open(f"/tmp/{schema.name}", database_url=schema.url).close()
        dsn = sa.make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
        per = len(rows) // k
        seconds, _ = _together(_raw_copy_writer, [
            (dsn, schema.name, rows[j * per:(j + 1) * per], batch) for j in range(k)])
        with schema.admin.connect() as conn:
            got = conn.exec_driver_sql(f"SELECT count(*) FROM {schema.name}.decisions").scalar()
    finally:
        schema.drop()
    if got != per * k:
        raise SystemExit(f"record_postgres raw writers: {got} rows, expected {per * k}")
    return per * k / seconds


def _writer(url: str, home: str, n: int, offset: int, late: bool, ready, start,
            done) -> None:
    import modelward
    from modelward.ledger import decisions as ledger_decisions

    ledger_decisions.LATE_LOCK = late
    phases = _time_phases(late)
    work = Workload()
    ledger = modelward.open(home, database_url=url)
    record = ledger.record
    ledger.recorder  # noqa: B018
    with ledger.store.read() as conn:  # connected before the clock starts
        conn.exec_driver_sql("SELECT 1")
    ready.put(offset)
    start.wait()
    for i in range(offset, offset + n):
        record(alias="chat/v1", model_digest="sha256:" + "1" * 64, subject=work.subjects[i % 5000],
               input_digest=work.inputs[i & 1023], output_digest=work.outputs[(i * 7) & 1023],
               segments=SEGMENTS[i % 3], process=f"writer-{offset}")
    ledger.flush()
    ledger.close()
    done.put((time.perf_counter(), phases))


# (writers, phase) -> seconds of each block: where a block's time goes, the lock's part
PHASES: dict[tuple[int, str], list[float]] = {}


def _time_phases(late: bool) -> dict[str, list[float]]:
    """Time each block's steps in this writer process (pgcopy's functions, wrapped): before
    the lock (claim, keys, encoding), waiting for it plus the head read (``lock_and_head``),
    and holding it (from the head read to the COMMIT: COPY, seal, rollups, commit). The
    locked path holds the lock from the start: its ``append_in`` (keys, claim, COPY, seal,
    rollups; not the COMMIT) is timed instead."""
    from modelward.ledger import decisions, pgcopy

    if not late:
        held: dict[str, list[float]] = {"append_in_under_lock": []}
        append_in = decisions.append_in

        def timed_append_in(*a, **k):
            t = time.perf_counter()
            try:
                return append_in(*a, **k)
            finally:
                held["append_in_under_lock"].append(time.perf_counter() - t)

        decisions.append_in = timed_append_in
        return held

    out: dict[str, list[float]] = {"before_lock": [], "lock_wait": [], "lock_held": []}
    state = {"start": None, "granted": None}
    claim, lock_and_head, finish = pgcopy.claim, pgcopy.lock_and_head, pgcopy.finish

    def timed_claim(*a, **k):
        state["start"] = time.perf_counter()
        return claim(*a, **k)

    def timed_lock(*a, **k):
        t = time.perf_counter()
        out["before_lock"].append(t - state["start"])
        try:
            return lock_and_head(*a, **k)
        finally:
            state["granted"] = time.perf_counter()
            out["lock_wait"].append(state["granted"] - t)

    def timed_finish(*a, **k):
        try:
            return finish(*a, **k)
        finally:
            out["lock_held"].append(time.perf_counter() - state["granted"])

    pgcopy.claim, pgcopy.lock_and_head, pgcopy.finish = timed_claim, timed_lock, timed_finish
    return out


def run_writers(base: str, n: int, k: int, tmp, late: bool = True) -> float:
    """Decisions per second of ``k`` processes recording ``n`` in all into one ledger."""

    import modelward
    from modelward.ledger import chain

    schema = Schema(base)
    try:
        modelward.open(str(tmp / schema.name), database_url=schema.url).close()
        per = n // k
        seconds, ends = _together(_writer, [
            (schema.url, str(tmp / f"{schema.name}-{j}"), per, j * per, late) for j in range(k)])
        for _, phases in ends:
            for key, values in (phases or {}).items():
                PHASES.setdefault((k, key), []).extend(values)
        check = modelward.open(str(tmp / schema.name), database_url=schema.url)
        with check.store.read() as conn:
            got = conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar()
            report = chain.verify(conn)
        check.close()
    finally:
        schema.drop()
    if got != per * k or not report.ok:
        raise SystemExit(f"record_postgres writers: {got} decisions (expected {per * k}), "
                         f"chain ok={report.ok}")
    return per * k / seconds


def _emit_cpu(cpu_runs: dict[str, list[dict]], n: int) -> None:
    """CPU per decision, client (every thread) and server (its backends), of the recorder
    and of raw COPY: what a machine with no core to spare pays, whatever the load. Their
    ratio is the throughput ratio a saturated machine would show."""
    per: dict[str, list[float]] = {}
    for name, used in cpu_runs.items():
        if any(u.get("server") is None for u in used):
            return  # the server is not on this machine
        for part in ("client", "server"):
            values = [u[part] / n * 1e6 for u in used]
            c.emit(BENCH, f"{name}_{part}_cpu_us_per_decision", c.median(values), "us",
                   **c.spread(values))
        per[name] = [(u["client"] + u["server"]) / n * 1e6 for u in used]
        c.emit(BENCH, f"{name}_cpu_us_per_decision", c.median(per[name]), "us",
               **c.spread(per[name]))
    for name, figure in (("modelward", "cpu_ratio_vs_raw_copy"),
                         ("locked_path", "locked_path_cpu_ratio_vs_raw_copy")):
        ratios = [r / m for m, r in zip(per[name], per["raw_copy"], strict=True)]
        c.emit(BENCH, figure, c.median(ratios), "x", target=0.6, **c.spread(ratios))


def main(argv: list[str] | None = None) -> int:
    import tempfile
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="decisions per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2000, help="rows per raw transaction "
                    "(the recorder's flush_records default)")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4, 8],
                    help="numbers of concurrent writer processes to compare")
    ap.add_argument("--locked-path", action="store_true",
                    help="also run the writers with the chain's lock taken first (the path "
                    "before the late lock), interleaved")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = ap.parse_args(argv)
    n, repeats = (20_000, 1) if args.quick else (args.n, args.repeats)
    c.CONTEXT.update(n=n, batch=args.batch)
    work = Workload()
    cpu_runs: dict[str, list[dict]] = {}
    runs: dict[str, list[float]] = {"modelward": [], "locked_path": [], "executemany_path": [],
                                    "raw_executemany": [], "raw_copy": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            c.note(f"repeat {r + 1}/{repeats}")
            used: dict = {}
            seconds, rows = run_modelward(args.database_url, work, n, bulk=True, tmp=Path(tmp),
                                          cpu=used)
            runs["modelward"].append(n / seconds)
            cpu_runs.setdefault("modelward", []).append(used)
            used = {}
            runs["locked_path"].append(n / run_modelward(args.database_url, work, n, bulk=True,
                                                         tmp=Path(tmp), late=False, cpu=used)[0])
            cpu_runs.setdefault("locked_path", []).append(used)
            runs["executemany_path"].append(
                n / run_modelward(args.database_url, work, n, bulk=False, tmp=Path(tmp))[0])
            runs["raw_executemany"].append(n / run_raw(args.database_url, rows, args.batch,
                                                       copy=False))
            used = {}
            runs["raw_copy"].append(n / run_raw(args.database_url, rows, args.batch, copy=True,
                                                cpu=used))
            cpu_runs.setdefault("raw_copy", []).append(used)
    c.emit(BENCH, "decisions_per_s", c.median(runs["modelward"]), "1/s", **c.spread(runs["modelward"]))
    c.emit(BENCH, "locked_path_decisions_per_s", c.median(runs["locked_path"]), "1/s",
           **c.spread(runs["locked_path"]))
    c.emit(BENCH, "executemany_path_decisions_per_s", c.median(runs["executemany_path"]), "1/s",
           **c.spread(runs["executemany_path"]))
    c.emit(BENCH, "raw_executemany_rows_per_s", c.median(runs["raw_executemany"]), "1/s",
           **c.spread(runs["raw_executemany"]))
    c.emit(BENCH, "raw_copy_rows_per_s", c.median(runs["raw_copy"]), "1/s", **c.spread(runs["raw_copy"]))
    for name in ("modelward", "locked_path"):
        ratios = [a / b for a, b in zip(runs[name], runs["raw_copy"], strict=True)]
        figure = "ratio_vs_raw_copy" if name == "modelward" else "locked_path_ratio_vs_raw_copy"
        c.emit(BENCH, figure, c.median(ratios), "x", target=0.6, **c.spread(ratios))
    _emit_cpu(cpu_runs, n)
    paths = {"": True, "locked_path_": False} if args.locked_path else {"": True}
    with tempfile.TemporaryDirectory() as tmp:
        writers = {(p, k): [] for p in [*paths, "raw_copy_"] for k in args.writers}
        for r in range(repeats):
            for k in args.writers:
                for p, late in paths.items():
                    c.note(f"{k} writers{' (locked path)' if p else ''}, repeat {r + 1}/{repeats}")
                    writers[p, k].append(run_writers(args.database_url, n, k, Path(tmp), late))
                c.note(f"{k} raw COPY writers, repeat {r + 1}/{repeats}")
                writers["raw_copy_", k].append(
                    run_raw_writers(args.database_url, rows, k, args.batch))
    for (k, phase), values in sorted(PHASES.items()):
        c.emit(BENCH, f"writers_{k}_block_{phase}_ms", c.median(values) * 1e3, "ms", writers=k,
               blocks=len(values), p90=round(sorted(values)[int(len(values) * 0.9)] * 1e3, 2))
    for (p, k), rates in writers.items():
        unit = "rows_per_s" if p == "raw_copy_" else "decisions_per_s"
        c.emit(BENCH, f"{p}writers_{k}_{unit}", c.median(rates), "1/s", writers=k,
               **c.spread(rates))
        if k != args.writers[0]:
            base = writers[p, args.writers[0]]
            scale = [a / b for a, b in zip(rates, base, strict=True)]
            c.emit(BENCH, f"{p}writers_{k}_vs_{args.writers[0]}", c.median(scale), "x",
                   writers=k, **c.spread(scale))
    for k in args.writers:  # the recorder's k writers against raw COPY's k writers
        ratios = [a / b for a, b in zip(writers["", k], writers["raw_copy_", k], strict=True)]
        c.emit(BENCH, f"writers_{k}_ratio_vs_raw_copy_writers", c.median(ratios), "x",
               writers=k, **c.spread(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
