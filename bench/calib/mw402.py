"""MW402 (covariate imbalance): the guard's balance test (``checks.balance``, which
``modelward check`` and ``experiment check`` call) on arms drawn by the real salted
assignment over simulated pre-period populations.

Null: the recorded arms are the salt's, so any imbalance is chance. Covariates are the
awkward kinds real populations hold: a rare 0/1 flag, sequential ids, sign-up age,
zero-inflated heavy-tailed spend, a rare enterprise flag, age with missing values.
Effects: a planted difference of stated SMD on one covariate in one arm, and the hash-free
``id % 100 < 5`` canary whose low seats are power users."""

from __future__ import annotations

import random

import numpy as np

from modelward.rollout import checks
from modelward.rollout.assignment import Experiment
from modelward.rollout.population import Table

from . import Scenario

MAX_SMD, ALPHA = 0.1, 0.05  # the guard's defaults
DRAWS = 1000  # the guard's re-randomisations (the tests use fewer: the p-value stays valid)


def rare_flag(rng: np.random.Generator, n: int, start: int) -> dict[str, np.ndarray]:
    return {"flag": (rng.random(n) < 0.04).astype(np.float64)}


def realistic(rng: np.random.Generator, n: int, start: int) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + n, dtype=np.float64)
    days = np.maximum(0.0, (n - np.arange(n)) * 0.7 + rng.normal(0, 5, n))  # older ids: older
    paying = rng.random(n) < 0.3
    spend = np.where(paying, rng.lognormal(3.0, 1.5, n), 0.0)
    enterprise = (rng.random(n) < 0.02).astype(np.float64)
    age = np.round(rng.normal(38, 12, n).clip(16, 90))
    age[rng.random(n) < 0.25] = np.nan
    sessions = rng.negative_binomial(1.2, 0.08, n).astype(np.float64)
    return {"account_id": ids, "days_since_signup": days, "spend_90d": spend,
            "enterprise": enterprise, "age": age, "sessions_30d": sessions}


def _fires(arms: str, n: int, population, *, planted: tuple[str, str, float] | None = None,
           canary: bool = False, draws: int = DRAWS):
    def fires(rng: random.Random) -> bool:
        g = np.random.default_rng(rng.getrandbits(64))
        start = rng.randrange(1, 10**6)
        subjects = [f"u-{start + i}" for i in range(n)]
        columns = population(g, n, start)
        exp = Experiment("calib", f"salt-{rng.getrandbits(64):016x}", arms)
        if canary:  # hash-free: id % 100 < 5, where the first seats of a block are admins
            seat = (np.arange(start, start + n) % 100)
            arm = np.where(seat < 5, "treatment", "control").astype(object)
            columns["sessions_30d"] = np.where(seat < 8, g.poisson(16, n),
                                               g.poisson(12, n)).astype(np.float64)
        else:
            arm = exp.assign_many(subjects)
        if planted:
            col, in_arm, size = planted
            values = columns[col]
            sd = float(np.nanstd(values))
            columns[col] = np.where(arm == in_arm, values + size * sd, values)
        table = Table("simulated", "", subjects, numeric=columns)
        assign = checks.from_pairs(list(zip(subjects, arm, strict=True)), list(exp.arm_names),
                                   exp.control)
        diffs, _ = checks.balance(assign, table, None, max_smd=MAX_SMD, alpha=ALPHA,
                                  **({"draws": draws} if draws != DRAWS else {}))
        return any(d.flagged for d in diffs)
    return fires


NULLS = {
    "0/1 covariate 4% prevalence, 95/5 n=1000": ("control=95,treatment=5", 1000, rare_flag),
    "90/5/5 n=1000 realistic covariates": ("control=90,a=5,b=5", 1000, realistic),
    "50/50 n=1000 realistic covariates": ("control=50,treatment=50", 1000, realistic),
    "80/15/5 n=2000 realistic covariates": ("control=80,a=15,b=5", 2000, realistic),
}


def null(name: str, draws: int = DRAWS) -> Scenario:
    """A null scenario, its balance test run with ``draws`` re-randomisations."""
    return Scenario("MW402", name, ALPHA, _fires(*NULLS[name], draws=draws))


SCENARIOS = [
    *(null(name) for name in NULLS),
    Scenario("MW402", "50/50 n=1000 realistic covariates", ALPHA,
             _fires("control=50,treatment=50", 1000, realistic,
                    planted=("sessions_30d", "treatment", 0.3)),
             effect="sessions_30d shifted by 0.3 SD in treatment", reps=300),
    Scenario("MW402", "95/5 n=4000 realistic covariates", ALPHA,
             _fires("control=95,treatment=5", 4000, realistic,
                    planted=("sessions_30d", "treatment", 0.3)),
             effect="sessions_30d shifted by 0.3 SD in treatment", reps=300),
    Scenario("MW402", "95/5 n=4000 hash-free canary", ALPHA,
             _fires("control=95,treatment=5", 4000, realistic, canary=True),
             effect="id % 100 < 5: the canary holds the admins' seats (SMD ~0.7)", reps=300),
]
