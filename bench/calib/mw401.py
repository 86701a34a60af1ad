"""MW401 (sample ratio mismatch): the guard's chi-square on arms drawn by the real salted
assignment. Null: subjects exposed as the salt assigns them. Effect: a share of one arm's
subjects is never recorded (a treatment that crashes before it logs)."""

from __future__ import annotations

import random

import numpy as np

from modelward.rollout import checks
from modelward.rollout.assignment import Experiment

from . import Scenario

ALPHA, MIN_COUNT = 0.001, 100  # the guard's defaults


def _fires(arms: str, n: int, *, lose: float = 0.0, ids: str = "seq"):
    def fires(rng: random.Random) -> bool:
        g = np.random.default_rng(rng.getrandbits(64))
        exp = Experiment("calib", f"salt-{rng.getrandbits(64):016x}", arms)
        if ids == "seq":
            start = rng.randrange(10**6)
            subjects = [f"u-{start + i}" for i in range(n)]
        else:  # 18-digit integer ids, as many warehouses hand them out
            subjects = g.integers(10**17, 10**18, n, dtype=np.int64).astype(str).tolist()
        arm = exp.assign_many(subjects)
        if lose:
            kept = ~((arm == exp.arm_names[-1]) & (g.random(n) < lose))
            subjects, arm = [s for s, k in zip(subjects, kept, strict=True) if k], arm[kept]
        assign = checks.from_pairs(list(zip(subjects, arm.tolist(), strict=True)),
                                   list(exp.arm_names), exp.control)
        return checks.srm(assign, exp.shares, alpha=ALPHA, min_count=MIN_COUNT).alarm
    return fires


SCENARIOS = [
    Scenario("MW401", "50/50 n=2000", ALPHA, _fires("control=50,treatment=50", 2000),
             reps=60000),
    Scenario("MW401", "95/5 n=4000", ALPHA, _fires("control=95,treatment=5", 4000), reps=60000),
    Scenario("MW401", "90/5/5 n=4000 18-digit ids", ALPHA,
             _fires("control=90,a=5,b=5", 4000, ids="long"), reps=60000),
    Scenario("MW401", "34/33/33 n=300 (small arms)", ALPHA,
             _fires("control=34,a=33,b=33", 300), reps=60000),
    Scenario("MW401", "95/5 n=4000", ALPHA, _fires("control=95,treatment=5", 4000, lose=0.2),
             effect="20% of treatment exposures lost", reps=300),
    Scenario("MW401", "95/5 n=20000", ALPHA,
             _fires("control=95,treatment=5", 20000, lose=0.1),
             effect="10% of treatment exposures lost", reps=300),
    Scenario("MW401", "50/50 n=2000", ALPHA, _fires("control=50,treatment=50", 2000, lose=0.1),
             effect="10% of treatment exposures lost", reps=300),
]
