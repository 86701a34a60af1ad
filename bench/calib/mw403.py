"""MW403 (correlated assignment): the guard's decision over one ``check`` run
(``checks.correlated_assignment``: every pair of experiments and every ID-order test,
adjusted as one family) on many experiments salted independently over one user base.

Null: 40 experiments, each with its own salt, each exposing a random share of the users
(so pairs share from a few hundred to thousands of subjects), allocations 50/50, 90/10,
95/5 and 34/33/33; sequential or 18-digit integer ids. A finding in a run is a false
alarm. Effects: one experiment reuses another's salt; one buckets on ``id % 100 < 5``;
one copies another's arm for a share of its subjects."""

from __future__ import annotations

import random

import numpy as np

from modelward.rollout import checks
from modelward.rollout.assignment import Experiment

from . import Scenario

ALPHA, MIN_SHARED = 0.001, 100  # the guard's defaults
ALLOCATIONS = ("control=50,treatment=50", "control=90,treatment=10", "control=95,treatment=5",
               "control=34,a=33,b=33")


def _fires(experiments: int = 40, users: int = 5000, *, ids: str = "seq",
           reuse_salt: bool = False, bucket: bool = False, copy: float = 0.0):
    def fires(rng: random.Random) -> bool:
        if ids == "seq":
            start = rng.randrange(1, 10**6)
            pool = [f"u-{start + i}" for i in range(users)]
        else:  # 18-digit integer ids, as warehouses hand them out
            pool = [str(rng.randrange(10**17, 10**18)) for _ in range(users)]
        pool = np.array(pool, dtype=object)
        draw = np.random.default_rng(rng.getrandbits(64))  # who each experiment exposes
        assigns = {}
        salts = [f"salt-{rng.getrandbits(64):016x}" for _ in range(experiments)]
        if reuse_salt:
            salts[1] = salts[0]
        for k in range(experiments):
            arms = ALLOCATIONS[0] if reuse_salt and k < 2 else rng.choice(ALLOCATIONS)
            exp = Experiment(f"exp-{k:02d}", salts[k], arms)
            share = rng.uniform(0.1, 0.6)
            subjects = pool[draw.random(users) < share].tolist()
            arm = list(exp.assign_many(subjects))
            if bucket and k == 0:
                arm = ["treatment" if int(s.rsplit("-", 1)[-1]) % 100 < 5 else "control"
                       for s in subjects]
            if copy and k == 1:  # a share of exp-01's subjects take exp-00's arm
                first = dict(zip(assigns["exp-00"].subjects, assigns["exp-00"].arms,
                                 strict=True))
                arm = [first[s] if s in first and first[s] in exp.arm_names
                       and rng.random() < copy else a for s, a in zip(subjects, arm,
                                                                     strict=True)]
            assigns[exp.name] = checks.from_pairs(list(zip(subjects, arm, strict=True)),
                                                  list(exp.arm_names), exp.control)
        family = checks.correlated_assignment(assigns, sorted(assigns), alpha=ALPHA,
                                              min_shared=MIN_SHARED)
        return (any(r.alarm for _, r in family.pairs)
                or any(t.flagged for ts in family.order.values() for t in ts))
    return fires


def _sparse(users: int = 1200, copy: float = 0.0):
    """Two 95/5 experiments over the same ``users``: the treatment∩treatment cell expects
    users/400 subjects (3 at 1,200), where Pearson's chi-square was not judged (a cell
    expecting fewer than 5) and is far off in the tail when it is. ``copy``: the second
    takes the first's arm for that share of the subjects."""
    def fires(rng: random.Random) -> bool:
        start = rng.randrange(1, 10**6)
        pool = [f"u-{start + i}" for i in range(users)]
        a = Experiment("a", f"salt-{rng.getrandbits(64):016x}", ALLOCATIONS[2])
        b = Experiment("b", f"salt-{rng.getrandbits(64):016x}", ALLOCATIONS[2])
        arm_a, arm_b = list(a.assign_many(pool)), list(b.assign_many(pool))
        arm_b = [x if rng.random() < copy else y for x, y in zip(arm_a, arm_b, strict=True)]
        assigns = {e.name: checks.from_pairs(list(zip(pool, arms, strict=True)),
                                             list(e.arm_names), e.control)
                   for e, arms in ((a, arm_a), (b, arm_b))}
        family = checks.correlated_assignment(assigns, sorted(assigns), alpha=ALPHA,
                                              min_shared=MIN_SHARED)
        return (any(r.alarm for _, r in family.pairs)
                or any(t.flagged for ts in family.order.values() for t in ts))
    return fires


NULL = "40 independent experiments over 5,000 users"
SPARSE = "two 95/5 experiments over the same 1,200 users"
SCENARIOS = [
    Scenario("MW403", NULL, ALPHA, _fires(), reps=2500),
    Scenario("MW403", "40 independent experiments, 18-digit integer ids", ALPHA,
             _fires(ids="long"), reps=500),
    Scenario("MW403", "5 independent experiments over 20,000 users", ALPHA,
             _fires(experiments=5, users=20000), reps=3000),
    Scenario("MW403", NULL, ALPHA, _fires(reuse_salt=True),
             effect="two experiments share one salt", reps=100),
    Scenario("MW403", NULL, ALPHA, _fires(bucket=True),
             effect="one experiment buckets on id % 100 < 5", reps=100),
    Scenario("MW403", NULL, ALPHA, _fires(copy=0.2),
             effect="one experiment copies another's arm for 20% of its subjects", reps=100),
    Scenario("MW403", NULL, ALPHA, _fires(copy=0.5),
             effect="one experiment copies another's arm for 50% of its subjects", reps=100),
    Scenario("MW403", SPARSE, ALPHA, _sparse(), reps=3000),
    Scenario("MW403", SPARSE, ALPHA, _sparse(copy=0.2),
             effect="the second copies the first's arm for 20% of the users", reps=100),
    Scenario("MW403", SPARSE, ALPHA, _sparse(copy=0.5),
             effect="the second copies the first's arm for 50% of the users", reps=100),
]
