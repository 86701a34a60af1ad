"""MW502 pass-rate shift: unchanged gates (null) and planted drops (power).

A query's candidates pass together: each query draws its own pass rate from a Beta
distribution (mean 0.35, sd 0.25 by default), then its candidates pass independently at
that rate. Each case is one substrate change with ``before`` and ``after`` queries, judged
by :func:`modelward.retrieval.drift.pass_rate_shift` with MW502's default settings.
"""

from __future__ import annotations

import random

import numpy as np

from modelward.guards import threshold_drift
from modelward.retrieval.drift import GateSide, pass_rate_shift

from . import Scenario

DEFAULTS = {s.name: s.default for s in threshold_drift.OPTIONS}


def _beta(mean: float, sd: float) -> tuple[float, float]:
    s = mean * (1 - mean) / (sd * sd) - 1
    return mean * s, (1 - mean) * s


def gate_side(gen: np.random.Generator, queries: int, mean: float, sd: float = 0.25,
              candidates: tuple[int, int] = (20, 20)) -> GateSide:
    a, b = _beta(mean, sd)
    rates = gen.beta(a, b, queries)
    n = gen.integers(candidates[0], candidates[1] + 1, queries)
    x = gen.binomial(n, rates)
    return GateSide.of(zip(x.tolist(), n.tolist(), strict=True))


def case(queries: tuple[int, int] | None, before: float = 0.35, after: float = 0.35,
         candidates: tuple[int, int] = (20, 20)):
    """One simulated substrate change; ``queries`` None draws 10-100 a side."""
    def fires(rng: random.Random) -> bool:
        gen = np.random.default_rng(rng.getrandbits(64))
        k1, k2 = queries if queries else (rng.randint(10, 100), rng.randint(10, 100))
        shift = pass_rate_shift(gate_side(gen, k1, before, candidates=candidates),
                                gate_side(gen, k2, after, candidates=candidates),
                                alpha=DEFAULTS["alpha"], min_effect=DEFAULTS["min_effect"],
                                min_candidates=DEFAULTS["min_candidates"],
                                min_queries=DEFAULTS["min_queries"])
        return bool(shift and shift.fires)
    return fires


NOMINAL = DEFAULTS["alpha"]
SCENARIOS = [
    Scenario("MW502", "20 candidates/query, 10 vs 10 queries", NOMINAL, case((10, 10)),
             reps=50_000, tags=("clustered", "small arms")),
    Scenario("MW502", "20 candidates/query, 10 vs 100 queries", NOMINAL, case((10, 100)),
             reps=50_000, tags=("clustered", "small arms")),
    Scenario("MW502", "20 candidates/query, 100 vs 10 queries", NOMINAL, case((100, 10)),
             reps=50_000, tags=("clustered", "small arms")),
    Scenario("MW502", "20 candidates/query, 10-100 queries a side", NOMINAL, case(None),
             reps=50_000, tags=("clustered",)),
    Scenario("MW502", "5-50 candidates/query, 10-100 queries a side", NOMINAL,
             case(None, candidates=(5, 50)), reps=50_000, tags=("clustered", "skewed")),
    Scenario("MW502", "20 candidates/query, 100 vs 100 queries", NOMINAL, case((100, 100)),
             reps=50_000, tags=("clustered",)),
    Scenario("MW502", "35% -> 25%, 100 queries a side", NOMINAL,
             case((100, 100), after=0.25), effect="pass rate 0.35 -> 0.25", reps=2000),
    Scenario("MW502", "35% -> 25%, 300 queries a side", NOMINAL,
             case((300, 300), after=0.25), effect="pass rate 0.35 -> 0.25", reps=2000),
    Scenario("MW502", "35% -> 22%, 100 queries a side", NOMINAL,
             case((100, 100), after=0.22), effect="pass rate 0.35 -> 0.22", reps=2000),
]
