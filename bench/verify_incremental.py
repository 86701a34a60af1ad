"""Verification from a signed checkpoint against all history, and MW103 with and without one.

Builds (once, cached under ``bench/out/verify_incremental/``) the same 1,000,000-decision
ledger as ``bench/audit.py``, copies it to a scratch file for each run, and with an HMAC key
configured measures (medians of ``--repeats``, wall seconds):

* ``verify_full_s`` — ``checkpoints.verify(full=True)``: every block recomputed;
* ``mw103_full_s`` — the MW103 guard alone (``run_guard``) before any checkpoint exists;
* ``verify_checkpoint_only_s`` — right after a checkpoint, nothing new: the fixed cost of
  starting from one (signature, the decisions count under it, one COUNT per chained table);
* ``verify_incremental_s`` / ``mw103_checkpoint_s`` — after ``--new`` decisions were
  appended past the checkpoint;
* ``mw103_speedup`` — ``mw103_full_s / mw103_checkpoint_s``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import _common as c
import audit

BENCH = "verify_incremental"


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=10_000, help="decisions appended after the "
                    "checkpoint (blocks of 2,000)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.decisions, args.new, args.repeats = 20_000, 2_000, 1

    import modelward
    from modelward.guards.runner import run_guard
    from modelward.ledger import checkpoints, decisions, heads

    base = c.OUT / f"{BENCH}-{args.decisions}"
    ledger, _meta = audit.open_cached(base, args.decisions, 1_000, args.rebuild)
    ledger.close()
    scratch = c.out_dir(f"{BENCH}-scratch")
    shutil.copy(base / "ledger.db", scratch / "ledger.db")
    os.environ["MODELWARD_SIGNING_KEY"] = "bench-secret"
    ledger = modelward.open(str(base / "home"), database_url=f"sqlite:///{scratch / 'ledger.db'}",
                            create=False)
    store, settings = ledger.store, ledger.settings
    keys = heads.keys_from(settings)
    ctx = {"decisions": args.decisions, "database": "sqlite-file"}

    def verify(full: bool):
        with store.read() as conn:
            report = checkpoints.verify(conn, keys, full=full)
        if not report.ok:
            raise SystemExit(f"{BENCH}: the ledger does not verify: {report.first_broken}")
        return report

    def mw103():
        if run_guard(store, settings, "MW103"):
            raise SystemExit(f"{BENCH}: MW103 fired on the benchmark ledger")

    try:
        c.note(f"{BENCH}: MW103 and verify over all history")
        mw_full = _timed(mw103, args.repeats)
        v_full = _timed(lambda: verify(True), args.repeats)
        report = verify(True)
        with store.write() as conn:
            cp = checkpoints.store(conn, report, keys)
        c.note(f"{BENCH}: checkpoint {cp.number} at block {cp.block}")
        v_none = _timed(lambda: verify(False), args.repeats)
        rows = []
        for i in range(args.new):
            rows.append(decisions.normalize({"at": time.time_ns() // 1000 + i,
                                             "alias": "chat/v1", "subject": f"u-{i % 977}",
                                             "model_digest": "sha256:" + "a" * 64})[0])
            if len(rows) == 2000:
                decisions.append(store, rows)
                rows = []
        if rows:
            decisions.append(store, rows)
        assert verify(False).decisions == args.new
        v_inc = _timed(lambda: verify(False), args.repeats)
        mw_inc = _timed(mw103, args.repeats)
    finally:
        ledger.close()
    c.emit(BENCH, "verify_full_s", c.median(v_full), "s", **ctx, **c.spread(v_full))
    c.emit(BENCH, "mw103_full_s", c.median(mw_full), "s", **ctx, **c.spread(mw_full))
    c.emit(BENCH, "verify_checkpoint_only_s", c.median(v_none), "s", **ctx, new_decisions=0,
           **c.spread(v_none))
    c.emit(BENCH, "verify_incremental_s", c.median(v_inc), "s", **ctx, new_decisions=args.new,
           **c.spread(v_inc))
    c.emit(BENCH, "mw103_checkpoint_s", c.median(mw_inc), "s", **ctx, new_decisions=args.new,
           **c.spread(mw_inc))
    c.emit(BENCH, "mw103_speedup", c.median(mw_full) / c.median(mw_inc), "x", **ctx,
           new_decisions=args.new)


if __name__ == "__main__":
    main()
