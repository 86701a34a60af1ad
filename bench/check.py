"""``modelward check`` at scale: does its cost follow the window or the ledger's history?

Builds ledgers of 1M, 5M and 10M realistic decisions (``--sizes``), on SQLite and on
PostgreSQL (``--database-url``, default the local test database; ``--no-postgres`` skips
it), each built once and cached (SQLite under ``bench/out/check/``, PostgreSQL in a schema
``mw_bench_check_<size>``; rebuilt when the builder changes or with ``--rebuild``).

The ledger: 240 days of traffic from 16 serving processes, one chain block per recorder
flush (2,000 decisions of one process); 4 self-hosted model aliases and 6 prompt aliases
moving 30 times each between 10 registered versions, 2 hosted model aliases
(``openai:gpt-4o`` floating, changing snapshot once mid-history with no registry event;
a pinned Anthropic snapshot), a hosted embedder and a reranker on a quarter of the
decisions (retrieval-gate figures, vendor model ids), segments. One process keeps its
resolutions two hours after every move (MW105 fires), no eval ran (MW301 fires).

Figures, each in a fresh process (``modelward.guards.runner.run``, the function behind
``modelward check``), median of ``--repeats``:

* ``check_s`` — every guard, all history; ``check_no_mw103_s`` — every guard but MW103
  (chain verification: its cost follows the blocks since the last checkpoint, measured by
  its own work);
* ``check_since_30d_s`` — every guard but MW103 with ``--since 30d``;
* ``check_peak_mib`` — the client's peak resident memory over the full check;
* ``check_growth`` — ``check_no_mw103_s`` at the largest size over the smallest (target
  ≤ 1.5 from 1M to 10M), and ``check_5m_s`` against its target of 5 s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time

import orjson

import _common as c

BENCH = "check"
BUILDER = 1  # bump when the ledger built below changes
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
SPAN_US = 240 * DAY_US
BLOCK = 2000
PROCESSES = 16
LAGGING = "serve-15"  # keeps every resolution two hours after a move
MODELS = ["chat/v1", "chat/mini", "chat/eu", "chat/batch"]
HOSTED = {"chat/gpt": "openai:gpt-4o", "chat/claude": "anthropic:claude-3-5-sonnet-20241022"}
PROMPTS = [f"prompt/{n}@production" for n in ("support", "sales", "billing", "search",
                                               "summarise", "route")]
VERSIONS = 10
MOVES = 30
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _uuid7_at(us: int, rng: random.Random) -> str:
    value = ((us // 1000) << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) \
        | (0b10 << 62) | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _digest(i: int, salt: str) -> str:
    return "sha256:" + hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()


def build(home, url: str, n: int, seed: int = 11) -> dict:
    """Fill the empty ledger at ``url`` with ``n`` decisions; returns its description."""
    import modelward
    from modelward.ledger import aliases, artifacts, decisions

    rng = random.Random(seed)
    ledger = modelward.open(str(home), database_url=url)
    store = ledger.store
    start = (time.time_ns() // 1000) - SPAN_US - HOUR_US
    targets: dict[str, list[str]] = {}
    for alias in MODELS + PROMPTS:
        kind = "model" if alias.startswith("chat/") else "prompt"
        targets[alias] = [artifacts.register_bytes(
            store, kind, f"{alias} build {k}".encode() * 32, name=alias.split("@")[0],
            version=f"v{k}", at=start).artifact.digest for k in range(VERSIONS)]
    for alias, hosted in HOSTED.items():
        targets[alias] = [artifacts.register_hosted(store, hosted, name=alias,
                                                    at=start).artifact.digest]
    embedder = artifacts.register_hosted(store, "openai:text-embedding-3-small",
                                         name="embed/docs", kind="embedder",
                                         at=start).artifact.digest
    reranker = artifacts.register_bytes(store, "reranker", b"rerank" * 64, name="rerank",
                                        at=start).artifact.digest
    moves: list[tuple[int, str, str]] = []
    for alias, digests in targets.items():
        moves.append((start, alias, digests[0]))
        if len(digests) == 1:
            continue
        times = sorted(rng.randrange(start + DAY_US, start + SPAN_US) for _ in range(MOVES))
        for k, t in enumerate(times, start=1):
            moves.append((t, alias, digests[k % VERSIONS]))
    moves.sort()
    with store.write() as conn:
        for t, alias, digest in moves:
            aliases.set_alias(conn, alias, digest, at=t, actor="bench", reason="bench move")
    timeline = {a: [(t, d) for t, al, d in moves if al == a] for a in targets}

    def resolve(alias: str, at: int) -> str:
        events = timeline[alias]
        lo, hi = 0, len(events) - 1
        while lo < hi:  # the last event at or before ``at``
            mid = (lo + hi + 1) // 2
            if events[mid][0] <= at:
                lo = mid
            else:
                hi = mid - 1
        return events[lo][1]

    names = MODELS + list(HOSTED)
    inputs = [_digest(i, "in") for i in range(4096)]
    segments = [{"tier": t, "region": r} for t in ("free", "pro", "enterprise")
                for r in ("eu", "us", "apac")]
    step = SPAN_US // n
    t0 = time.perf_counter()
    switch = start + SPAN_US // 2  # openai:gpt-4o moves to a new snapshot, unannounced
    for first in range(0, n, BLOCK):
        p = (first // BLOCK) % PROCESSES
        process = f"serve-{p}"
        lag = 2 * HOUR_US if process == LAGGING else 0
        rows = []
        for i in range(first, min(first + BLOCK, n)):
            at = start + HOUR_US + i * step + rng.randrange(max(1, step))
            alias = names[(p + i % 2) % len(names)]
            prompt_alias = PROMPTS[(p + (i // 3) % 2) % len(PROMPTS)]
            d = {"id": _uuid7_at(at, rng), "at": at, "alias": alias,
                 "model_digest": resolve(alias, at - lag),
                 "prompt_digest": resolve(prompt_alias, at - lag),
                 "subject": f"u-{rng.randrange(50_000):05d}",
                 "input_digest": inputs[i & 4095], "output_digest": inputs[(i * 7) & 4095],
                 "segments": segments[i % 9], "process": process}
            if alias == "chat/gpt":
                d["vendor_model_id"] = ("gpt-4o-2024-08-06" if at < switch
                                        else "gpt-4o-2024-11-20")
                d["vendor_fingerprint"] = f"fp_{(at // DAY_US) % 7}"
            elif alias == "chat/claude":
                d["vendor_model_id"] = "claude-3-5-sonnet-20241022"
            if i % 4 == 0:
                d.update(embedder_digest=embedder, reranker_digest=reranker,
                         gate={"threshold": 0.4, "candidates": 20,
                               "passed": rng.randrange(21)})
            rows.append(decisions.normalize(d)[0])
        decisions.append(store, rows, recorded_at=rows[-1][1] + 20_000)
        if first % 500_000 == 0:
            c.note(f"check: built {first:,} of {n:,} decisions "
                   f"({time.perf_counter() - t0:.0f}s)")
    ledger.close()
    return {"builder": BUILDER, "decisions": n, "seed": seed, "alias_events": len(moves),
            "build_s": round(time.perf_counter() - t0, 1)}


def _pg_schema_url(base: str, name: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(base).update_query_dict(
        {"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)


def cached(backend: str, n: int, *, pg_base: str, rebuild: bool,
           pg_schema: str = "mw_bench_check") -> tuple[str, str, dict]:
    """(home, database url, description) of the cached ledger of ``n`` decisions."""
    root = c.out_dir(BENCH)
    tag = f"{backend}-{n}"
    meta_file = root / f"{tag}.json"
    meta = orjson.loads(meta_file.read_bytes()) if meta_file.exists() else {}
    home = root / tag / "home"
    if backend == "sqlite":
        url = f"sqlite:///{root / tag / 'ledger.db'}"
    else:
        url = _pg_schema_url(pg_base, f"{pg_schema}_{n}")
    if rebuild or meta.get("builder") != BUILDER or meta.get("decisions") != n:
        c.note(f"check: building {n:,} decisions on {backend}")
        shutil.rmtree(root / tag, ignore_errors=True)
        (root / tag).mkdir(parents=True)
        if backend == "postgresql":
            import sqlalchemy as sa

            admin = sa.create_engine(pg_base)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {pg_schema}_{n} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {pg_schema}_{n}")
            admin.dispose()
        meta = build(home, url, n)
        meta_file.write_bytes(orjson.dumps(meta))
    _upgrade(home, url)
    return str(home), url, meta


def _upgrade(home, url: str) -> None:
    """Migrations added since the ledger was built (the rollups back-fill among them)."""
    from modelward.ledger.engine import Store
    from modelward.settings import Settings

    store = Store(Settings({"home": str(home), "database_url": url}))
    try:
        t0 = time.perf_counter()
        before, after = store.upgrade()
        if before != after:
            c.note(f"check: upgraded {url} in {time.perf_counter() - t0:.1f}s")
    finally:
        store.dispose()


def child(home: str, url: str, since: str | None, ignore: list[str], *,
          select: list[str] | None = None, rollups: bool = True) -> None:
    """One check in this process; prints its seconds, peak memory and findings."""
    from modelward.guards import runner
    from modelward.ledger.engine import Store
    from modelward.settings import Settings
    from modelward.timefmt import now_us, parse_duration

    settings = Settings({"home": home, "database_url": url, "check_rollups": rollups})
    store = Store(settings)
    now = now_us()
    t0 = time.perf_counter()
    report = runner.run(store, settings, ignore=ignore or None, select=select or None, now=now,
                        since=now - parse_duration(since) if since else None)
    seconds = time.perf_counter() - t0
    findings: dict[str, int] = {}
    for f in report.findings:
        findings[f.code] = findings.get(f.code, 0) + 1
    print(orjson.dumps({"seconds": seconds, "peak_mib": c.peak_rss_mb(),
                        "findings": findings,
                        "timings": {k: round(v, 3) for k, v in report.timings.items()}}
                       ).decode())


def run_child(home: str, url: str, *, since: str | None = None, ignore=(), select=(),
              rollups: bool = True) -> dict:
    cmd = [sys.executable, __file__, "--child", home, url, since or "-",
           ",".join(select) or "-", "1" if rollups else "0", *ignore]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=c.BENCH_DIR,
                         env={**os.environ, "MODELWARD_TEST_POSTGRES_URL": ""})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def measure(backend: str, n: int, home: str, url: str, repeats: int) -> dict:
    runs = {
        "check_s": dict(),
        "check_no_mw103_s": dict(ignore=["MW103"]),
        "check_since_30d_s": dict(since="30d", ignore=["MW103"]),
    }
    out = {}
    for figure, kw in runs.items():
        results = [run_child(home, url, **kw) for _ in range(repeats)]
        secs = [r["seconds"] for r in results]
        out[figure] = c.median(secs)
        extra = {"backend": backend, "decisions": n, **c.spread(secs),
                 "findings": results[-1]["findings"], "timings": results[-1]["timings"]}
        if figure == "check_s":
            extra["target"] = 5 if n == 5_000_000 else None
        c.emit(BENCH, figure, out[figure], "s", **extra)
        if figure == "check_s":
            peak = max(r["peak_mib"] for r in results)
            c.emit(BENCH, "check_peak_mib", peak, "MiB", backend=backend, decisions=n,
                   target=250)
    return out


def measure_guards(backend: str, n: int, home: str, url: str, repeats: int,
                   codes: list[str]) -> None:
    """Each guard of ``codes`` alone (its own time from the runner), rollups on and off, all
    history and ``--since 30d``: ``guard_s`` figures with the guard, window and rollups."""
    for code in codes:
        for since in (None, "30d"):
            for rollups in (True, False):
                results = [run_child(home, url, since=since, select=[code], rollups=rollups)
                           for _ in range(repeats)]
                secs = [r["timings"].get(code, 0.0) for r in results]
                c.emit(BENCH, "guard_s", c.median(secs), "s", backend=backend, decisions=n,
                       guard=code, since=since or "all", rollups=rollups, **c.spread(secs),
                       findings=results[-1]["findings"])


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        home, url, since, select, rollups, *ignore = sys.argv[2:]
        child(home, url, None if since == "-" else since, ignore,
              select=None if select == "-" else select.split(","), rollups=rollups == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,5000000,10000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--database-url", default=os.environ.get("MODELWARD_BENCH_POSTGRES_URL",
                                                             DEFAULT_PG))
    ap.add_argument("--pg-schema", default="mw_bench_check",
                    help="prefix of the cached PostgreSQL schemas (one per size)")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--quick", action="store_true", help="20k decisions: a smoke test")
    ap.add_argument("--guards", default="",
                    help="comma-separated codes: time each alone, rollups on and off "
                         "(instead of the full check)")
    args = ap.parse_args(argv)
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    backends = [b for b, off in (("sqlite", args.no_sqlite),
                                 ("postgresql", args.no_postgres)) if not off]
    c.emit_line(c.machine_line())
    for backend in backends:
        figures = {}
        for n in sizes:
            home, url, meta = cached(backend, n, pg_base=args.database_url,
                                     rebuild=args.rebuild, pg_schema=args.pg_schema)
            if args.build_only:
                c.emit(BENCH, "build_s", meta.get("build_s", 0.0), "s", backend=backend,
                       decisions=n)
                continue
            if args.guards:
                measure_guards(backend, n, home, url, 1 if args.quick else args.repeats,
                               args.guards.split(","))
                continue
            figures[n] = measure(backend, n, home, url, 1 if args.quick else args.repeats)
        if len(figures) > 1:
            lo, hi = min(figures), max(figures)
            c.emit(BENCH, "check_growth", figures[hi]["check_no_mw103_s"]
                   / figures[lo]["check_no_mw103_s"], "x", backend=backend,
                   smallest=lo, largest=hi, target=1.5)


if __name__ == "__main__":
    main()
