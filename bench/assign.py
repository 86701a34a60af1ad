"""Assignment: modelward vs GrowthBook's Python SDK, single call and batch, and the balanced
salt search.

Contenders, side by side in one process, over the same subject ids (``user-<n>``, and
UUIDs for the single call):

* ``modelward.assign(exp, subject)`` — one call (C SipHash-2-4 from ``siphashc``);
* ``modelward`` pure-Python fallback — the same call without ``siphashc`` (context);
* ``modelward.assign_many(exp, subjects)`` — numpy, batches of 1,000,000;
* GrowthBook — ``gb.set_attributes({"id": s}); gb.run(Experiment(key, variations=[0, 1],
  weights=[0.95, 0.05]))`` per subject, the SDK evaluating an equivalent 95/5 experiment on
  one reused instance (its cheapest documented path); its batch figure is the same loop;
* the salt search — ``rollout.search.search`` over 1,000,000 subjects, three covariates
  and 200 candidate salts (every core).

Figures: ``single_call_us`` per contender and id kind (median of repeats), ``speedup_vs_growthbook``,
``batch_per_s`` per contender, ``salt_search_s``. Targets: batch >= 2,000,000/s, single call
faster than GrowthBook's, salt search < 60 s.

    python bench/assign.py [--subjects 1000000] [--candidates 200] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid

import numpy as np

import _common as c

BENCH = "assign"


def single(fn, subjects, repeats: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in subjects:
            fn(s)
        runs.append((time.perf_counter() - t0) / len(subjects) * 1e6)
    return c.median(runs), runs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=1_000_000)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--single", type=int, default=100_000, help="calls per single-call repeat")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.subjects, args.candidates, args.repeats, args.single = 100_000, 10, 2, 10_000

    import growthbook
    from growthbook import Experiment as GBExperiment
    from growthbook import GrowthBook

    import modelward
    from modelward.rollout import assignment
    from modelward.rollout.search import search

    logging.getLogger("growthbook").setLevel(logging.ERROR)
    c.CONTEXT.update(subjects=args.subjects, growthbook=growthbook.__version__
                     if hasattr(growthbook, "__version__") else "4.x")
    exp = modelward.Experiment("checkout", "checkout:0", "control=95,treatment=5")
    gb_exp = GBExperiment(key="checkout", variations=[0, 1], weights=[0.95, 0.05])
    gb = GrowthBook(attributes={"id": "warm"})

    def gb_assign(s):
        gb.set_attributes({"id": s})
        return gb.run(gb_exp).variationId

    def pure(s):
        return exp._names[assignment.bisect_right(
            exp._bounds, (assignment.siphash.siphash24(exp._state, s.encode()) >> 11)
            * assignment._TWO_53)]

    kinds = {"user-id": [f"user-{i:08d}" for i in range(args.single)],
             "uuid": [str(uuid.UUID(int=i * 0x9E3779B97F4A7C15 % (1 << 128)))
                      for i in range(args.single)]}
    c.note("single calls")
    for kind, subjects in kinds.items():
        mw, mw_runs = single(exp.assign, subjects, args.repeats)
        py, py_runs = single(pure, subjects, args.repeats)
        gbt, gb_runs = single(gb_assign, subjects, args.repeats)
        c.emit(BENCH, "single_call_us", mw, "us", contender="modelward", ids=kind,
               **c.spread(mw_runs))
        c.emit(BENCH, "single_call_us", py, "us", contender="modelward-pure-python", ids=kind,
               **c.spread(py_runs))
        c.emit(BENCH, "single_call_us", gbt, "us", contender="growthbook", ids=kind,
               **c.spread(gb_runs))
        c.emit(BENCH, "speedup_vs_growthbook", gbt / mw, "x", ids=kind,
               pure_python_speedup=round(gbt / py, 3))
        # the two implementations must agree on who is treated
        gb_share = np.mean([gb_assign(s) for s in subjects])
        mw_share = np.mean(exp.assign_many(subjects) == "treatment")
        c.emit(BENCH, "treatment_share", float(mw_share), "", contender="modelward", ids=kind,
               growthbook=round(float(gb_share), 4))

    c.note("batch")
    subjects = [f"user-{i:08d}" for i in range(args.subjects)]
    runs = []
    for _ in range(args.repeats):
        runs.append(args.subjects / c.timed(lambda: exp.assign_many(subjects)))
    c.emit(BENCH, "batch_per_s", c.median(runs), "1/s", contender="modelward",
           target=2_000_000, **c.spread(runs))
    sample = subjects[: args.single]
    gb_batch = len(sample) / c.timed(lambda: [gb_assign(s) for s in sample])
    c.emit(BENCH, "batch_per_s", gb_batch, "1/s", contender="growthbook",
           note="a loop of single calls (no batch API)")
    assert list(exp.assign_many(sample)) == [exp.assign(s) for s in sample]

    c.note(f"salt search: {args.subjects:,} subjects x {args.candidates} candidates")
    rng = np.random.default_rng(1)
    cols = {"sessions_30d": rng.poisson(12, args.subjects).astype(float),
            "spend_90d": rng.gamma(2.0, 20.0, args.subjects),
            "tenure_days": rng.exponential(300, args.subjects)}
    t0 = time.perf_counter()
    res = search("checkout", "control=95,treatment=5", subjects, cols,
                 candidates=args.candidates)
    seconds = time.perf_counter() - t0
    c.emit(BENCH, "salt_search_s", seconds, "s", candidates=args.candidates, covariates=3,
           target=60, achieved_max_abs_smd=round(res.achieved, 5),
           candidate_0_max_abs_smd=round(res.first, 5), peak_rss_mb=round(c.peak_rss_mb(), 1))


if __name__ == "__main__":
    main()
