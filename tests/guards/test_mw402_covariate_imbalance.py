"""MW402 covariate-imbalance, including the canary failure: sequential ids whose low
block seats are power users, bucketed hash-free by ``id % 100 < 5``."""

from __future__ import annotations

import pytest

from modelward.errors import ConfigError
from modelward.ledger.artifacts import register_bytes

from ..rollout.world import canary_arm, canary_population, create, expose, write_population


@pytest.fixture
def pre(tmp_path):
    return write_population(tmp_path / "users-pre.csv", canary_population())


def test_MW402_fires_for_the_hash_free_canary(ledger, findings, pre):
    create(ledger.store, "canary", "unused")
    rows = canary_population()
    expose(ledger.store, "canary", [(r["subject"], canary_arm(r["subject"])) for r in rows],
           step=1000)
    found = {f.evidence["covariate"]: f for f in findings("MW402", pre_period=str(pre))}
    assert sorted(found) == ["sessions_30d", "spend_90d"]
    f = found["sessions_30d"]
    assert (f.severity, f.subject) == ("warning", "canary")
    assert f.evidence["smd"] > 2 and f.evidence["matched_subjects"] == 20_000
    assert f.message.startswith("canary: treatment differs from control on sessions_30d before "
                                "the experiment: mean ")
    assert "family-wise p = 0.001 over 2 tests, 1,000 re-randomisations)" in f.message
    assert f.evidence["p_adjusted"] == pytest.approx(1 / 1001)
    only = findings("MW402", pre_period=str(pre), covariates=["spend_90d"])
    assert [x.evidence["covariate"] for x in only] == ["spend_90d"]
    assert findings("MW402", pre_period=str(pre), max_smd=5.0) == []


def test_MW402_clean_for_a_salted_assignment_of_the_same_population(ledger, fleet, findings,
                                                                      pre):
    rows = canary_population()
    data = pre.read_bytes()
    digest = register_bytes(ledger.store, "dataset", data, name="pre").artifact.digest
    exp = create(ledger.store, "salted", "salted:3", balance={"population": {
        "dataset": digest, "subject_column": "subject", "covariates": ["sessions_30d",
                                                                       "spend_90d"]}})
    expose(ledger.store, "salted", [(r["subject"], exp.assign(r["subject"])) for r in rows],
           step=1000)
    assert findings("MW402") == []  # judged on the population recorded at creation
    assert findings("MW402", pre_period=str(pre)) == []


def test_MW402_needs_a_pre_period_and_names_a_bad_one(ledger, findings, pre):
    create(ledger.store, "canary", "unused")
    expose(ledger.store, "canary", [(str(i), canary_arm(str(i))) for i in range(1, 3000)])
    assert findings("MW402") == []  # no population configured or recorded: nothing to judge
    with pytest.raises(ConfigError, match="check.MW402.pre_period: cannot read .*missing.csv"):
        findings("MW402", pre_period="missing.csv")
    with pytest.raises(ConfigError, match="check.MW402: 'nope' is not a column"):
        findings("MW402", pre_period=str(pre), covariates=["nope"])
