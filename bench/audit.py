"""Reading the ledger at scale: audit one decision, resolve an alias at a time, verify.

Runs against a ledger of 1,000,000 decisions, 20 aliases and 1,000 alias events spread
over eight months, built once and cached under ``bench/out/audit/`` (rebuilt when the
builder or its parameters change; ``--rebuild`` forces it). Figures (medians of repeats):

* ``audit_p50_ms`` / ``audit_p99_ms`` — ``registry.audit.audit_decision(store, id)`` on
  random decisions with the verification cache warm (every block recomputed once before);
* ``audit_cold_p50_ms`` / ``audit_cold_p99_ms`` — the same with ``use_cache=False``: the
  decision's whole chain block and every payload rehashed on each call;
* ``resolve_at_p50_ms`` / ``resolve_at_p99_ms`` — ``ledger.aliases.resolve_at`` of a random
  alias at a random time, each in its own read transaction (what ``alias resolve --at``
  does after start-up);
* ``verify_decisions_per_s`` — ``ledger.chain.verify`` over the whole ledger in one
  process as ``modelward verify`` runs it (``apart=True``: the rollups compared on a
  connection of their own, in a thread, while the chain is recomputed);
* ``verify_serial_decisions_per_s`` — the same in one thread (``apart=False``), and
  ``verify_decisions_per_cpu_s``, its decisions per CPU second (what one core does);
* ``verify_parallel_decisions_per_s`` — the same with ``workers=`` one per core (at most 4).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import time

import orjson

import _common as c

BENCH = "audit"
BUILDER = 3  # bump when the ledger built below changes (3: 16 KiB pages)
DAY_US = 86_400_000_000
SPAN_US = 240 * DAY_US  # eight months
MODEL_ALIASES = [f"chat/{name}" for name in ("v1", "v2", "mini", "large", "eu", "us", "canary",
                                             "shadow", "batch", "legacy")]
PROMPT_ALIASES = [f"prompt/{name}@production" for name in (
    "support", "sales", "billing", "search", "summarise", "classify", "extract", "translate",
    "moderate", "route")]
TARGETS_PER_ALIAS = 10  # artifacts each alias moves between (moves and rollbacks)


def _uuid7_at(us: int, rng: random.Random) -> str:
    value = ((us // 1000) << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) \
        | (0b10 << 62) | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _digest(i: int, salt: str) -> str:
    return "sha256:" + hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()


def build(path, n_decisions: int, n_events: int, seed: int = 7) -> dict:
    """Create the benchmark ledger at ``path``; returns its description."""
    import modelward
    from modelward.ledger import aliases, artifacts, decisions

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    rng = random.Random(seed)
    ledger = modelward.open(str(path / "home"), database_url=f"sqlite:///{path / 'ledger.db'}")
    store = ledger.store
    start = (time.time_ns() // 1000) - SPAN_US - DAY_US
    names = MODEL_ALIASES + PROMPT_ALIASES
    targets: dict[str, list[str]] = {}
    for alias in names:
        kind = "model" if alias.startswith("chat/") else "prompt"
        targets[alias] = [artifacts.register_bytes(
            store, kind, f"{alias} build {k}".encode() * 64, name=alias.split("@")[0],
            at=start).artifact.digest for k in range(TARGETS_PER_ALIAS)]
    # every alias is created before the first decision, then moves at random times
    per_alias = n_events // len(names)
    moves: list[tuple[int, str, str]] = []
    for alias in names:
        times = sorted(rng.randrange(start + DAY_US, start + SPAN_US) for _ in range(per_alias - 1))
        moves.append((start, alias, targets[alias][0]))
        previous = targets[alias][0]
        for t in times:
            nxt = rng.choice([d for d in targets[alias] if d != previous])
            moves.append((t, alias, nxt))
            previous = nxt
    moves.sort()
    with store.write() as conn:
        for t, alias, digest in moves:
            aliases.set_alias(conn, alias, digest, at=t, actor="bench", reason="bench move")
    timeline = {a: [(t, d) for t, al, d in moves if al == a] for a in names}

    def current(alias: str, at: int, cursor: dict) -> str:
        events, i = timeline[alias], cursor.get(alias, 0)
        while i + 1 < len(events) and events[i + 1][0] <= at:
            i += 1
        cursor[alias] = i
        return events[i][1]

    inputs = [_digest(i, "in") for i in range(4096)]
    outputs = [_digest(i, "out") for i in range(4096)]
    segments = [{"tier": t, "region": r} for t in ("free", "pro", "enterprise")
                for r in ("eu", "us", "apac")]
    step = SPAN_US // n_decisions
    cursor: dict = {}
    block = 2000
    t0 = time.perf_counter()
    for first in range(0, n_decisions, block):
        rows = []
        for i in range(first, min(first + block, n_decisions)):
            at = start + DAY_US + i * step + rng.randrange(step)
            model_alias = MODEL_ALIASES[i % len(MODEL_ALIASES)]
            prompt_alias = PROMPT_ALIASES[(i // 7) % len(PROMPT_ALIASES)]
            row, _ = decisions.normalize({
                "id": _uuid7_at(at, rng), "at": at, "alias": model_alias,
                "model_digest": current(model_alias, at, cursor),
                "prompt_digest": current(prompt_alias, at, cursor),
                "subject": f"u-{rng.randrange(50_000):05d}", "input_digest": inputs[i & 4095],
                "output_digest": outputs[(i * 7) & 4095], "segments": segments[i % 9],
                "gate": {"threshold": 0.4, "candidates": 20, "passed": rng.randrange(21)},
                "process": f"serve-{i % 4}:1"})
            rows.append(row)
        decisions.append(store, rows, recorded_at=rows[-1][1] + 20_000)
        if first % 100_000 == 0:
            c.note(f"audit: built {first:,} of {n_decisions:,} decisions "
                   f"({time.perf_counter() - t0:.0f}s)")
    with store.read() as conn:
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
    meta = {"builder": BUILDER, "decisions": n_decisions, "aliases": len(names),
            "alias_events": len(moves), "span_days": SPAN_US // DAY_US, "seed": seed,
            "page_size": page_size}
    ledger.close()
    (path / "meta.json").write_bytes(orjson.dumps(meta))
    return meta


def open_cached(path, n_decisions: int, n_events: int, rebuild: bool):
    """The cached ledger (built or upgraded as needed) and its description."""
    import modelward
    from modelward.errors import SchemaError

    want = {"builder": BUILDER, "decisions": n_decisions}
    meta_file = path / "meta.json"
    meta = orjson.loads(meta_file.read_bytes()) if meta_file.exists() else {}
    if rebuild or any(meta.get(k) != v for k, v in want.items()):
        c.note(f"audit: building a ledger of {n_decisions:,} decisions under {path}")
        meta = build(path, n_decisions, n_events)
    url = f"sqlite:///{path / 'ledger.db'}"
    try:
        ledger = modelward.open(str(path / "home"), database_url=url, create=False)
    except SchemaError:  # migrations added since it was built
        from modelward.ledger.engine import Store
        from modelward.settings import Settings

        Store(Settings({"home": str(path / "home"), "database_url": url})).upgrade()
        ledger = modelward.open(str(path / "home"), database_url=url, create=False)
    return ledger, meta


def _sample_ids(store, k: int, rng: random.Random) -> list[str]:
    with store.read() as conn:
        n = conn.exec_driver_sql("SELECT max(rowid) FROM decisions").scalar()
        picks = sorted(rng.sample(range(1, n + 1), k))
        ids = []
        for i in range(0, len(picks), 500):
            part = picks[i:i + 500]
            marks = ", ".join("?" * len(part))
            ids += conn.exec_driver_sql(
                f"SELECT id FROM decisions WHERE rowid IN ({marks})", tuple(part)).scalars().all()
    rng.shuffle(ids)
    return ids


def _latencies_ms(fn, args) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for a in args:
        t = clock()
        fn(a)
        out.append((clock() - t) / 1e6)
    out.sort()
    return out


def bench_audit(ledger, args, rng) -> None:
    try:
        from modelward.registry.audit import audit_decision
    except ImportError as exc:
        c.emit(BENCH, "audit_p99_ms", float("nan"), "ms", skipped=f"not available: {exc}")
        return
    store = ledger.store
    verified = store.blobs.root / "verified" if hasattr(store.blobs, "root") else None
    if verified is not None and verified.exists():
        shutil.rmtree(verified)
    with store.read() as conn:
        per_block = conn.exec_driver_sql("SELECT min(id) FROM decisions GROUP BY block").scalars().all()
    c.note(f"audit: warming the verification cache ({len(per_block)} blocks)")
    for did in per_block:
        audit_decision(store, did)
    warm50, warm99, cold50, cold99 = [], [], [], []
    for rep in range(args.repeats):
        ids = _sample_ids(store, args.audits, rng)
        lat = _latencies_ms(lambda d: audit_decision(store, d), ids)
        warm50.append(c.percentile(lat, 50))
        warm99.append(c.percentile(lat, 99))
        cold = _latencies_ms(lambda d: audit_decision(store, d, use_cache=False),
                             ids[:args.cold_audits])
        cold50.append(c.percentile(cold, 50))
        cold99.append(c.percentile(cold, 99))
        c.note(f"audit: repeat {rep + 1}: warm p99 {warm99[-1]:.2f} ms, "
               f"cold p99 {cold99[-1]:.2f} ms")
    ctx = {"decisions": args.decisions, "database": "sqlite-file"}
    c.emit(BENCH, "audit_p50_ms", c.median(warm50), "ms", **ctx, audits=args.audits,
           cache="warm", **c.spread(warm50))
    c.emit(BENCH, "audit_p99_ms", c.median(warm99), "ms", **ctx, audits=args.audits,
           cache="warm", target=5, **c.spread(warm99))
    c.emit(BENCH, "audit_cold_p50_ms", c.median(cold50), "ms", **ctx, audits=args.cold_audits,
           cache="off", **c.spread(cold50))
    c.emit(BENCH, "audit_cold_p99_ms", c.median(cold99), "ms", **ctx, audits=args.cold_audits,
           cache="off", target=5, **c.spread(cold99))


def bench_resolve(ledger, meta, args, rng) -> None:
    from modelward.ledger.aliases import resolve_at

    store = ledger.store
    with store.read() as conn:
        lo, hi = conn.exec_driver_sql("SELECT min(at), max(at) FROM decisions").one()
    names = MODEL_ALIASES + PROMPT_ALIASES

    def one(q):
        with store.read() as conn:
            resolve_at(conn, q[0], q[1])

    def noop(_):
        with store.read() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    p50, p99, control99 = [], [], []
    for _ in range(args.repeats):
        queries = [(rng.choice(names), rng.randrange(lo, hi)) for _ in range(args.resolves)]
        lat = _latencies_ms(one, queries)
        p50.append(c.percentile(lat, 50))
        p99.append(c.percentile(lat, 99))
        control99.append(c.percentile(_latencies_ms(noop, queries), 99))
    ctx = {"decisions": args.decisions, "aliases": meta["aliases"],
           "alias_events": meta["alias_events"], "database": "sqlite-file",
           "queries": args.resolves}
    c.emit(BENCH, "resolve_at_p50_ms", c.median(p50), "ms", **ctx, **c.spread(p50))
    c.emit(BENCH, "resolve_at_p99_ms", c.median(p99), "ms", **ctx, target=1, **c.spread(p99))
    c.emit(BENCH, "read_transaction_p99_ms", c.median(control99), "ms", queries=args.resolves,
           note="control: an empty read transaction (SELECT 1), the machine's own jitter",
           **c.spread(control99))


def bench_verify(ledger, args) -> None:
    from modelward.ledger import chain
    from modelward.registry import parallel_verify

    rates, serial, cpu_rates, blocks = [], [], [], 0
    for _ in range(args.verify_repeats):
        for apart in (True, False):  # interleaved: both see the same machine
            cpu0 = time.process_time()
            with ledger.store.read() as conn:
                report = chain.verify(conn, apart=apart)
            cpu = time.process_time() - cpu0
            if not report.ok:
                raise SystemExit(f"audit bench: the benchmark ledger does not verify: "
                                 f"{report.first_broken}")
            (rates if apart else serial).append(report.decisions / report.seconds)
            if not apart:
                cpu_rates.append(report.decisions / cpu)
            blocks = report.blocks
    c.emit(BENCH, "verify_decisions_per_s", c.median(rates), "1/s", decisions=args.decisions,
           blocks=blocks, database="sqlite-file", target=500_000, **c.spread(rates))
    c.emit(BENCH, "verify_serial_decisions_per_s", c.median(serial), "1/s",
           decisions=args.decisions, **c.spread(serial))
    # the one-thread run: per CPU second is what one core does
    c.emit(BENCH, "verify_decisions_per_cpu_s", c.median(cpu_rates), "1/s",
           decisions=args.decisions, **c.spread(cpu_rates))
    workers = min(os.cpu_count() or 1, 4)
    if workers > 1:
        rates = []
        for _ in range(args.verify_repeats):
            with ledger.store.read() as conn:
                report = parallel_verify.verify(conn, workers=workers)
            if not report.ok:
                raise SystemExit(f"audit bench: verify with {workers} workers disagrees: "
                                 f"{report.first_broken}")
            rates.append(report.decisions / report.seconds)
        c.emit(BENCH, "verify_parallel_decisions_per_s", c.median(rates), "1/s",
               decisions=args.decisions, workers=workers, target=500_000, **c.spread(rates))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--alias-events", type=int, default=1_000)
    ap.add_argument("--audits", type=int, default=2_000, help="random audits per repeat")
    ap.add_argument("--cold-audits", type=int, default=300)
    ap.add_argument("--resolves", type=int, default=5_000, help="resolve-at calls per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--verify-repeats", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached ledger")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.decisions, args.audits, args.cold_audits, args.resolves = 20_000, 200, 50, 500
        args.repeats, args.verify_repeats = 2, 1

    suffix = "" if args.decisions == 1_000_000 else f"-{args.decisions}"
    ledger, meta = open_cached(c.OUT / f"audit{suffix}", args.decisions, args.alias_events,
                               args.rebuild)
    c.CONTEXT["page_size"] = meta.get("page_size")
    rng = random.Random(int.from_bytes(os.urandom(4)))
    try:
        c.note("audit: resolve --at")
        bench_resolve(ledger, meta, args, rng)
        c.note("audit: audit_decision")
        bench_audit(ledger, args, rng)
        c.note("audit: verify")
        bench_verify(ledger, args)
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
