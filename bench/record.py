"""Recording decisions: modelward's batched recorder vs raw sqlite3 vs MLflow tracing.

Figures (medians of ``--repeats`` runs, interleaved so noise hits each side alike):

* ``decisions_per_s`` — sustained: N realistic ``ledger.record()`` calls in a loop plus the
  final ``flush()``, into SQLite with the chain on;
* ``raw_sqlite3_rows_per_s`` — the raw limit: ``sqlite3.executemany`` of the identical rows
  into an identical table (the ledger's own DDL, indexes, page size and PRAGMAs), committed
  in transactions of ``flush_records`` rows: no validation, no hashing, no thread;
* ``ratio_vs_raw_sqlite3`` — the two above divided (target >= 0.5);
* ``raw_sqlite3_multirow_rows_per_s`` / ``ratio_vs_raw_sqlite3_multirow`` — the raw limit
  written with multi-row INSERTs, as the ledger writes: the harder bar;
* ``cpu_us_per_decision`` / ``raw_sqlite3_cpu_us_per_row`` — process CPU time (every
  thread) per decision: far steadier than wall time on a busy machine;
* ``record_call_p50_us`` / ``record_call_p99_us`` / ``record_call_p999_us`` — one
  ``record()`` call, timed alone, in batched mode while the flush thread commits behind it;
  ``record_call_p99_us_flush_thread_asleep`` is the control (the same calls with the flush
  thread asleep): the machine's own jitter;
* ``peak_rss_mb`` — the process's peak RSS after the modelward runs (before MLflow loads);
* ``mlflow_spans_per_s`` / ``ratio_vs_mlflow`` — ``mlflow.start_span`` with the same fields
  as attributes, tracking URI ``sqlite:///…``, until every trace is exported (when mlflow is
  importable: the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time

import orjson

import _common as c

BENCH = "record"
SEGMENTS = ({"tier": "pro", "region": "eu", "lang": "en"},
            {"tier": "free", "region": "us", "lang": "en"},
            {"tier": "enterprise", "region": "apac", "lang": "ja"})


def _digest(i: int, salt: str) -> str:
    return "sha256:" + hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()


class Workload:
    """Precomputed inputs so the loop measures recording, not test-data generation."""

    def __init__(self) -> None:
        self.inputs = [_digest(i, "in") for i in range(1024)]
        self.outputs = [_digest(i, "out") for i in range(1024)]
        self.subjects = [f"u-{i:05d}" for i in range(5000)]


def _open(path, **settings):
    import modelward
    from modelward.ledger import aliases, artifacts

    if path.exists():
        shutil.rmtree(path)
    ledger = modelward.open(str(path), database_url=f"sqlite:///{path / 'ledger.db'}", **settings)
    store = ledger.store
    model = artifacts.register_bytes(store, "model", b"weights-of-chat-v1", name="chat").artifact
    prompt = artifacts.register_bytes(store, "prompt", b"You are a support agent. {{q}}",
                                      name="support").artifact
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", model.digest)
        aliases.set_alias(conn, "prompt/support@production", prompt.digest)
    uses = [ledger.resolve("chat/v1"), ledger.resolve("prompt/support@production")]
    return ledger, uses


def run_modelward(path, work: Workload, n: int, *, time_calls: bool = False, **settings):
    """(seconds for n records + flush, per-call ns list or None, CPU seconds of the
    process meanwhile: both threads)."""
    ledger, uses = _open(path, **settings)
    ins, outs, subjects = work.inputs, work.outputs, work.subjects
    record = ledger.record
    ledger.recorder  # start the thread outside the timed region  # noqa: B018
    with ledger.store.read() as conn:
        c.CONTEXT["page_size"] = conn.exec_driver_sql("PRAGMA page_size").scalar()
    gc.collect()
    calls = [0] * n if time_calls else None
    clock = time.perf_counter_ns
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n):
        if calls is not None:
            s = clock()
        record(uses=uses, subject=subjects[i % 5000], input_digest=ins[i & 1023],
               output_digest=outs[(i * 7) & 1023], segments=SEGMENTS[i % 3],
               gate={"threshold": 0.4, "candidates": 20, "passed": 7 + i % 5})
        if calls is not None:
            calls[i] = clock() - s
    ledger.flush()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    with ledger.store.read() as conn:
        got = conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar()
    ledger.close()
    if got != n:
        raise SystemExit(f"record bench: {got} decisions in the ledger, expected {n}")
    return seconds, calls, cpu


def _ledger_rows_and_ddl(path):
    """The rows the recorder stored (insert column order), the DDL of their table and the
    ledger's page size."""
    from modelward.ledger.decisions import COLUMNS

    db = sqlite3.connect(path / "ledger.db")
    rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM decisions ORDER BY block, pos").fetchall()
    ddl = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'decisions' AND sql IS NOT NULL "
        "ORDER BY type DESC")]  # the table before its indexes
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return COLUMNS, rows, ddl, page_size


def run_raw(path, columns, rows, ddl, page_size: int, batch: int, multirow: bool = False) -> float:
    """Seconds to executemany ``rows`` into a fresh identical table (same DDL, page size and
    PRAGMAs as the ledger), ``batch`` per commit."""
    path.mkdir(parents=True, exist_ok=True)
    file = path / "raw.db"
    for suffix in ("", "-wal", "-shm"):
        (path / f"raw.db{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(file, isolation_level=None)
    db.execute(f"PRAGMA page_size={int(page_size)}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in ddl:
        db.execute(statement)
    one = f"({', '.join('?' * len(columns))})"
    head = f"INSERT OR IGNORE INTO decisions ({', '.join(columns)}) VALUES "
    sql = head + one
    per = 32766 // len(columns)  # multi-row: as many rows per statement as SQLite binds
    gc.collect()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), batch):
        db.execute("BEGIN IMMEDIATE")
        if multirow:
            part = rows[i:i + batch]
            for j in range(0, len(part), per):
                chunk = part[j:j + per]
                db.execute(head + ", ".join([one] * len(chunk)),
                           [v for r in chunk for v in r])
        else:
            db.executemany(sql, rows[i:i + batch])
        db.execute("COMMIT")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    db.close()
    return seconds, cpu


def run_mlflow(path, work: Workload, n: int) -> float | None:
    """Seconds for n traced spans carrying the decision's fields, all exported; None when
    mlflow is not installed."""
    try:
        import mlflow
    except ImportError:
        return None
    import logging
    import os

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # MLflow's default: export in background threads. Its queue drops traces once 1000 are
    # waiting; give it room for all of them, so the figure counts every span stored (as
    # modelward's recorder never drops one: it applies back-pressure instead)
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "true"
    os.environ["MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE"] = str(n + 1000)
    # a fresh directory per run: mlflow keeps one store per tracking URI for the process
    path = path / f"run-{time.time_ns()}"
    path.mkdir(parents=True)
    mlflow.set_tracking_uri(f"sqlite:///{path / 'mlflow.db'}")
    # span payloads go to the experiment's artifact store: keep it under bench/out too
    mlflow.create_experiment("bench-record", artifact_location=(path / "artifacts").as_uri())
    mlflow.set_experiment("bench-record")
    ins, outs, subjects = work.inputs, work.outputs, work.subjects
    model, prompt = _digest(1, "model"), _digest(1, "prompt")
    gc.collect()
    t0 = time.perf_counter()
    for i in range(n):
        with mlflow.start_span(name="decision") as span:
            span.set_attributes({
                "alias": "chat/v1", "model_digest": model, "prompt_digest": prompt,
                "subject": subjects[i % 5000], "input_digest": ins[i & 1023],
                "output_digest": outs[(i * 7) & 1023], "segments": SEGMENTS[i % 3],
                "gate.threshold": 0.4, "gate.candidates": 20, "gate.passed": 7 + i % 5})
    flush = getattr(mlflow, "flush_trace_async_logging", None)
    if flush is not None:
        flush(terminate=False)
    seconds = time.perf_counter() - t0
    traces = mlflow.search_traces(max_results=n + 10, return_type="list", include_spans=False)
    if len(traces) != n:  # the figure would be a lie: say so loudly
        raise SystemExit(f"record bench: mlflow stored {len(traces)} traces of {n}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="decisions per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--latency-n", type=int, default=200_000, help="record() calls timed")
    ap.add_argument("--mlflow-n", type=int, default=1_000, help="spans per MLflow run")
    ap.add_argument("--mlflow-repeats", type=int, default=3)
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:  # measure the recorder's memory in a process of its own
        import modelward  # noqa: F401  (imports are not the recorder's memory)
        before = c.current_rss_mb()
        run_modelward(c.out_dir("record") / "rss", Workload(), args.rss_child)
        print(orjson.dumps({"peak_rss_mb": c.peak_rss_mb(), "rss_before_mb": before}).decode())
        return
    if args.quick:
        args.n = args.latency_n = 20_000
        args.repeats, args.mlflow_n, args.mlflow_repeats = 2, 50, 1

    from modelward.settings import Settings

    batch = Settings({}).flush_records
    root = c.out_dir("record")
    work = Workload()
    mw, raw, multi, mw_cpu, raw_cpu = [], [], [], [], []
    c.note(f"record: {args.repeats} x {args.n:,} decisions, modelward vs raw sqlite3")
    # warm-up (imports, page cache), not counted
    run_modelward(root / "mw", work, min(args.n, 20_000))
    for _ in range(args.repeats):
        seconds, _, cpu = run_modelward(root / "mw", work, args.n)
        mw.append(args.n / seconds)
        mw_cpu.append(cpu / args.n * 1e6)
        columns, rows, ddl, page_size = _ledger_rows_and_ddl(root / "mw")
        seconds, cpu = run_raw(root / "raw", columns, rows, ddl, page_size, batch)
        raw.append(len(rows) / seconds)
        raw_cpu.append(cpu / len(rows) * 1e6)
        seconds, _ = run_raw(root / "raw", columns, rows, ddl, page_size, batch, multirow=True)
        multi.append(len(rows) / seconds)
        del rows
    ctx = {"n": args.n, "database": "sqlite-file", "chain": True, "mode": "batched",
           "flush_records": batch}
    c.emit(BENCH, "decisions_per_s", c.median(mw), "1/s", **ctx, **c.spread(mw))
    c.emit(BENCH, "raw_sqlite3_rows_per_s", c.median(raw), "1/s", n=args.n, batch=batch,
           **c.spread(raw))
    ratios = [a / b for a, b in zip(mw, raw, strict=True)]
    c.emit(BENCH, "ratio_vs_raw_sqlite3", c.median(mw) / c.median(raw), "x",
           paired_ratios=[round(r, 3) for r in ratios], target=0.5)
    # CPU per decision (every thread) moves far less than wall time when the machine is busy
    c.emit(BENCH, "cpu_us_per_decision", c.median(mw_cpu), "us", note="process CPU, both threads",
           **c.spread(mw_cpu))
    c.emit(BENCH, "raw_sqlite3_cpu_us_per_row", c.median(raw_cpu), "us", **c.spread(raw_cpu))
    # the raw limit written the way the ledger writes (multi-row INSERTs): the harder bar
    c.emit(BENCH, "raw_sqlite3_multirow_rows_per_s", c.median(multi), "1/s", n=args.n,
           batch=batch, **c.spread(multi))
    c.emit(BENCH, "ratio_vs_raw_sqlite3_multirow", c.median(mw) / c.median(multi), "x",
           paired_ratios=[round(a / b, 3) for a, b in zip(mw, multi, strict=True)])

    c.note(f"record: {args.repeats} x {args.latency_n:,} record() calls timed one by one")
    p50s, p99s, p999s, idle99 = [], [], [], []
    # the control: the same calls with the flush thread asleep (it commits once, at the
    # end), so what remains is this machine's own jitter, not the recorder's
    asleep = {"flush_interval": "1h", "flush_records": 10**9, "queue_limit": 10**9}
    for _ in range(args.repeats):
        _, calls, _ = run_modelward(root / "mw", work, args.latency_n, time_calls=True)
        calls.sort()
        p50s.append(c.percentile(calls, 50) / 1000)
        p99s.append(c.percentile(calls, 99) / 1000)
        p999s.append(c.percentile(calls, 99.9) / 1000)
        _, calls, _ = run_modelward(root / "mw", work, args.latency_n, time_calls=True, **asleep)
        calls.sort()
        idle99.append(c.percentile(calls, 99) / 1000)
    c.emit(BENCH, "record_call_p50_us", c.median(p50s), "us", mode="batched", **c.spread(p50s))
    c.emit(BENCH, "record_call_p99_us", c.median(p99s), "us", mode="batched", target=20,
           **c.spread(p99s))
    c.emit(BENCH, "record_call_p999_us", c.median(p999s), "us", mode="batched",
           **c.spread(p999s))
    c.emit(BENCH, "record_call_p99_us_flush_thread_asleep", c.median(idle99), "us",
           mode="batched", note="control: the machine's jitter without the recorder's",
           **c.spread(idle99))
    child = subprocess.run([sys.executable, __file__, "--rss-child", str(args.n)],
                           capture_output=True, text=True, check=True, cwd=c.BENCH_DIR)
    rss = orjson.loads(child.stdout.strip().splitlines()[-1])
    c.emit(BENCH, "peak_rss_mb", rss["peak_rss_mb"], "MiB", n=args.n,
           note="a process that only opens the ledger and records n decisions",
           rss_after_imports_mb=round(rss["rss_before_mb"], 1))

    if args.no_mlflow:
        return
    c.note(f"record: {args.mlflow_repeats} x {args.mlflow_n:,} MLflow spans")
    spans = []
    if (root / "mlflow").exists():
        shutil.rmtree(root / "mlflow")
    for _ in range(args.mlflow_repeats):
        seconds = run_mlflow(root / "mlflow", work, args.mlflow_n)
        if seconds is None:
            c.emit(BENCH, "mlflow_spans_per_s", float("nan"), "1/s", skipped="mlflow not installed")
            return
        spans.append(args.mlflow_n / seconds)
    import mlflow

    c.emit(BENCH, "mlflow_spans_per_s", c.median(spans), "1/s", n=args.mlflow_n,
           mlflow=mlflow.__version__, tracking_uri="sqlite:///…", **c.spread(spans))
    c.emit(BENCH, "ratio_vs_mlflow", c.median(mw) / c.median(spans), "x")


if __name__ == "__main__":
    main()
