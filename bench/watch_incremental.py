"""A watch trigger (the guards one new block concerns, from the watch's in-memory state) vs
a full ``modelward check`` run, on a ledger of ~1M decisions, SQLite and PostgreSQL.

The ledger is ``bench/check.py``'s (240 days, 16 processes, 2,000-decision blocks, alias
moves, hosted models), built once and cached under ``bench/out/watch_incremental/`` (SQLite)
and in the PostgreSQL schema ``mw_bench_watchinc_<size>``. In a fresh process:

* ``check_s`` — every guard over all history (``guards.runner.run``: ``modelward check``);
* ``trigger_cold_s`` — the decision guards with an empty state (the watch's first trigger:
  reads the window and verifies the chain as configured);
* ``trigger_s`` — then, ``--repeats`` times: one block of 2,000 new decisions appended and
  the guards a decision block concerns run from the state (``watch``'s "new blocks" run):
  the rollups of the new block and of the hour the window's start cuts are read, MW103
  verifies the new block; ``trigger_rows`` — the rows the state read per trigger;
* ``trigger_stateless_s`` — the same guards after the same append without the state (what
  the watch did before: each trigger a full read of the window; MW103 as configured).

Every run uses the window ``--window`` (default: all history, so the window holds every
decision). Medians; the machine line carries the load.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time

import orjson

import _common as c
import check as check_bench

BENCH = "watch_incremental"
DEFAULT_PG = check_bench.DEFAULT_PG


def cached(backend: str, n: int, *, pg_base: str, rebuild: bool) -> tuple[str, str]:
    root = c.out_dir(BENCH)
    tag = f"{backend}-{n}"
    meta_file = root / f"{tag}.json"
    meta = orjson.loads(meta_file.read_bytes()) if meta_file.exists() else {}
    home = root / tag / "home"
    schema = f"mw_bench_watchinc_{n}"
    url = (f"sqlite:///{root / tag / 'ledger.db'}" if backend == "sqlite"
           else check_bench._pg_schema_url(pg_base, schema))
    if rebuild or meta.get("builder") != check_bench.BUILDER or meta.get("decisions") != n:
        c.note(f"{BENCH}: building {n:,} decisions on {backend}")
        shutil.rmtree(root / tag, ignore_errors=True)
        (root / tag).mkdir(parents=True)
        if backend == "postgresql":
            import sqlalchemy as sa

            admin = sa.create_engine(pg_base)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            admin.dispose()
        meta = check_bench.build(home, url, n)
        meta_file.write_bytes(orjson.dumps(meta))
    check_bench._upgrade(home, url)
    return str(home), url


def _block(n: int, rng: random.Random, at: int) -> list:
    from modelward.ledger import decisions

    rows = []
    for i in range(n):
        rows.append(decisions.normalize({
            "id": check_bench._uuid7_at(at + i, rng), "at": at + i, "alias": "chat/v1",
            "process": "serve-0", "subject": f"u-{i % 500}",
            "model_digest": "sha256:" + "ab" * 32})[0])
    return rows


def child(home: str, url: str, window: str | None, repeats: int) -> None:
    from modelward.guards import runner
    from modelward.guards.incremental import Incremental, concerned
    from modelward.ledger import decisions
    from modelward.ledger.engine import Store
    from modelward.settings import Settings
    from modelward.timefmt import now_us, parse_duration

    settings = Settings({"home": home, "database_url": url})
    store = Store(settings)
    span = parse_duration(window) if window else None

    def since(now):
        return now - span if span else None

    only = concerned({"decisions"})
    import sqlalchemy as sa

    sql = [0]  # every statement the process sends (the state's and the guards' own)
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *a: sql.__setitem__(0, sql[0] + 1))
    out: dict = {"check_s": [], "trigger_s": [], "trigger_stateless_s": [], "trigger_rows": [],
                 "trigger_statements": []}
    for _ in range(repeats):
        now = now_us()
        t0 = time.perf_counter()
        runner.run(store, settings, now=now, since=since(now))
        out["check_s"].append(time.perf_counter() - t0)
    state = Incremental()
    now = now_us()
    t0 = time.perf_counter()
    runner.run(store, settings, now=now, since=since(now), only=only, incremental=state)
    out["trigger_cold_s"] = time.perf_counter() - t0
    rng = random.Random(5)
    for _ in range(repeats):
        decisions.append(store, _block(2000, rng, now_us()))
        reads = (state.window.reads.rows, state.window.reads.statements)
        sent = sql[0]
        now = now_us()
        t0 = time.perf_counter()
        report = runner.run(store, settings, now=now, since=since(now), only=only,
                            incremental=state)
        out["trigger_s"].append(time.perf_counter() - t0)
        out.setdefault("trigger_sql", []).append(sql[0] - sent)
        out["trigger_rows"].append(state.window.reads.rows - reads[0])
        out["trigger_statements"].append(state.window.reads.statements - reads[1])
        t0 = time.perf_counter()
        plain = runner.run(store, settings, now=now, since=since(now), only=only)
        out["trigger_stateless_s"].append(time.perf_counter() - t0)
        same = ([f.to_dict() for f in report.findings if f.code != "MW103"]
                == [f.to_dict() for f in plain.findings if f.code != "MW103"])
        out.setdefault("same_findings", []).append(same)
    out["timings"] = {k: round(v, 3) for k, v in report.timings.items()}
    out["state_keys"] = state.window.size()
    out["peak_mib"] = c.peak_rss_mb()
    print(orjson.dumps(out).decode())


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        home, url, window, repeats = sys.argv[2:]
        child(home, url, None if window == "-" else window, int(repeats))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--window", default=None, help="e.g. 30d (default: all history)")
    ap.add_argument("--database-url", default=os.environ.get("MODELWARD_BENCH_POSTGRES_URL",
                                                             DEFAULT_PG))
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--quick", action="store_true", help="20k decisions: a smoke test")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.size
    c.emit_line(c.machine_line())
    for backend, off in (("sqlite", args.no_sqlite), ("postgresql", args.no_postgres)):
        if off:
            continue
        home, url = cached(backend, n, pg_base=args.database_url, rebuild=args.rebuild)
        cmd = [sys.executable, __file__, "--child", home, url, args.window or "-",
               str(args.repeats)]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=c.BENCH_DIR,
                             env={**os.environ, "MODELWARD_TEST_POSTGRES_URL": ""})
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-3000:])
        got = orjson.loads(res.stdout.strip().splitlines()[-1])
        ctx = {"backend": backend, "decisions": n, "window": args.window or "all"}
        for figure in ("check_s", "trigger_s", "trigger_stateless_s"):
            c.emit(BENCH, figure, c.median(got[figure]), "s", **ctx, **c.spread(got[figure]))
        c.emit(BENCH, "trigger_cold_s", got["trigger_cold_s"], "s", **ctx)
        c.emit(BENCH, "trigger_rows", c.median(got["trigger_rows"]), "rows", **ctx,
               statements=c.median(got["trigger_statements"]),
               sql_statements=c.median(got["trigger_sql"]), state_keys=got["state_keys"],
               same_findings=all(got["same_findings"]), timings=got["timings"],
               peak_mib=got["peak_mib"])
        c.emit(BENCH, "trigger_speedup", c.median(got["trigger_stateless_s"])
               / c.median(got["trigger_s"]), "x", **ctx)


if __name__ == "__main__":
    main()
