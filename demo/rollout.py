"""MW401-MW403 and MW405 of the rollout issue: a sequential-ID canary that held the power users.

The refund-flow canary was bucketed by the serving code as ``user_id % 100 < 5``. User ids
are sequential, and each customer organisation's admins took the first seats of a block
of 100 ids: the 5% arm held the heaviest users, and the canary's "lift" was the cohort.
It was recorded in modelward as an experiment (control=95, treatment=5) with exposures
carrying the arm the flag chose. The control, ``answer-style``, was created the way
``modelward experiment create --balance-on`` does it (``modelward.rollout.search``: the
most balanced of 100 candidate salts on the pre-period population, stored as a dataset)
and assigned by ``modelward.assign_many``. Both are judged against the same pre-period
population, named for MW402 in the demo ledger's ``modelward.toml``.
"""

from __future__ import annotations

import numpy as np

from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import experiments as ledger_experiments
from modelward.rollout.assignment import Experiment, assign_many
from modelward.rollout.population import read_table
from modelward.rollout.search import search
from modelward.timefmt import iso

from . import subjects
from .episodes import episode
from .world import DAY, HOUR, Expected, World

USERS = 10_000
PRE_PERIOD = "experiments/users-pre.csv"
ARMS = [("control", 95.0), ("treatment", 5.0)]
CANARY, BALANCED = "refund-flow-canary", "answer-style"
COVARIATES = ["sessions_30d", "spend_90d"]
METRIC = "resolved"  # each exposure's metric: 1 when the conversation ended resolved


def _population(world: World) -> None:
    """The pre-period file: sequential ids; the first five seats of each block of 100 are
    organisation admins, who use the product four times as much."""
    path = world.store.settings.home_path / PRE_PERIOD
    if path.exists():
        return
    rng = np.random.default_rng(world.seed)
    ids = np.arange(1, USERS + 1)
    admin = ids % 100 < 5
    sessions = rng.poisson(np.where(admin, 40.0, 12.0))
    spend = np.round(rng.gamma(2.0, np.where(admin, 60.0, 21.0)), 2)
    signup = [world.start - (USERS - int(i)) * HOUR // 4 for i in ids]
    lines = ["subject,sessions_30d,spend_90d,signup_at"] + [
        f"u-{i},{s},{m},{iso(t)}" for i, s, m, t in zip(ids, sessions, spend, signup,
                                                        strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    with (world.store.settings.home_path / "modelward.toml").open("a") as toml:
        toml.write(f"\n# demo/rollout.py: the pre-period population MW402 judges balance on\n"
                   f"[check.MW402]\npre_period = \"{PRE_PERIOD}\"\n")


def _expose(world: World, name: str, users: list[str], arms: list[str], days: int) -> None:
    rng = world.rng("exposures", name)
    start = world.now - days * DAY
    rows = [ledger_experiments.normalize_exposure({
        "experiment": name, "subject": u, "arm": a,
        "at": int(start + (k * (days * DAY - HOUR)) // len(users)),
        "metric": float(rng.random() < (0.31 if a == "treatment" else 0.3)),
        "model_digest": world.digests["chat-v1.3.1"]}) for k, (u, a) in enumerate(
            zip(users, arms, strict=True))]
    ledger_experiments.append_exposures(world.store, rows)


def _canary(world: World) -> None:
    _population(world)
    users = [f"u-{i}" for i in range(1, USERS + 1)]
    with world.store.write() as conn:
        ledger_experiments.create(conn, CANARY, "unused: bucketed by user_id % 100", ARMS,
                                  meta={"bucketing": "user_id % 100 < 5", "metric": METRIC},
                                  at=world.now - 15 * DAY)
    arms = ["treatment" if i % 100 < 5 else "control" for i in range(1, USERS + 1)]
    _expose(world, CANARY, users, arms, 14)


def _balanced(world: World) -> None:
    _population(world)
    path = world.store.settings.home_path / PRE_PERIOD
    table = read_table(path)
    result = search(BALANCED, ARMS, table.subjects,
                    {c: table.numeric[c] for c in COVARIATES}, candidates=100)
    reg = ledger_artifacts.register_bytes(world.store, "dataset", path.read_bytes(),
                                          name=f"experiment/{BALANCED}/pre-period")
    balance = {**result.to_dict(), "population": {
        "source": PRE_PERIOD, "dataset": reg.artifact.digest, "subject_column": "subject",
        "subjects": len(table), "covariates": COVARIATES}}
    with world.store.write() as conn:
        ledger_experiments.create(conn, BALANCED, result.salt, ARMS, balance=balance,
                                  meta={"metric": METRIC}, at=world.now - 13 * DAY)
    exp = Experiment(BALANCED, result.salt, ARMS)
    users = list(table.subjects)
    _expose(world, BALANCED, users, list(assign_many(exp, users)), 12)


@episode("id-modulo-canary", "incident",
         "the refund-flow canary bucketed user_id % 100 < 5: sequential ids, admins in the 5%")
def id_modulo_canary(world: World) -> list[Expected]:
    world.after_write.append(_canary)
    # The counts are exactly 95/5 (ids 1..10000), so MW401 stays silent: the bias is who,
    # not how many. The recorded arms are the flag's, not the salt's: MW405.
    return [*(subjects.by_subject("MW402", "id-modulo-canary", CANARY, covariate=c)
              for c in COVARIATES),
            *(subjects.by_subject("MW403", "id-modulo-canary", CANARY, test=t)
              for t in ("id-mod-10", "id-mod-100")),
            subjects.by_subject("MW405", "id-modulo-canary", CANARY)]


@episode("balanced-experiment", "control",
         "answer-style was assigned with the most balanced of 100 salts on the same users")
def balanced_experiment(world: World) -> list[Expected]:
    world.after_write.append(_balanced)
    return []
