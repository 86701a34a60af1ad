"""MW401 sample-ratio-mismatch."""

from __future__ import annotations

import pytest

from modelward.errors import ConfigError

from ..rollout.world import NOW, T0, create, expose


def _population(exp, n=10_000):
    return [(f"u-{i}", exp.assign(f"u-{i}")) for i in range(n)]


def test_MW401_fires_when_the_treatment_loses_exposures(ledger, findings):
    exp = create(ledger.store, "checkout-v2", "c:1")
    pairs = _population(exp)
    treated = [p for p in pairs if p[1] == "treatment"]
    lost = {s for s, _ in treated[: len(treated) // 4]}  # a quarter crash before expose()
    expose(ledger.store, "checkout-v2", [p for p in pairs if p[0] not in lost], step=10_000)
    (f,) = findings("MW401")
    counts = f.evidence["counts"]
    assert counts["control"] + counts["treatment"] == 10_000 - len(lost)
    assert (f.code, f.severity, f.subject) == ("MW401", "error", "checkout-v2")
    assert f.message.startswith(
        f"checkout-v2: {counts['control']:,} control and {counts['treatment']:,} treatment "
        "subjects against a 95/5 allocation (expected ")
    assert f.evidence["p_value"] < 1e-6 and f.evidence["shares"] == {"control": 0.95,
                                                                     "treatment": 0.05}
    # the window: exposures before `since` are not counted
    assert findings("MW401", since=NOW + 1) == []
    assert findings("MW401", alpha=f.evidence["p_value"] / 2) == []  # judged against alpha


def test_MW401_clean_for_a_salted_experiment_on_a_realistic_ledger(ledger, fleet, findings):
    exp = create(ledger.store, "checkout-v2", "c:1")
    expose(ledger.store, "checkout-v2", _population(exp), step=10_000)
    assert findings("MW401") == []


def test_MW401_waits_for_min_count_and_flags_unknown_arms(ledger, findings):
    exp = create(ledger.store, "small", "s:1")
    pairs = [(f"u-{i}", "control") for i in range(1000)]  # nobody in treatment
    expose(ledger.store, "small", pairs)
    assert findings("MW401") == []  # treatment expects 50 < 100: not judged yet
    (f,) = findings("MW401", min_count=50)
    assert f.evidence["counts"] == {"control": 1000, "treatment": 0}
    expose(ledger.store, "small", [("x-1", "blue")], start=T0 + 5000)
    (f,) = findings("MW401")
    assert f.message == ("small: exposures name arm(s) blue that the experiment does not have "
                         "(1,000 control, 0 treatment and 1 blue subjects)")
    assert exp.name == "small"
    with pytest.raises(ConfigError, match="check.MW401.experiments: no experiment 'nope'"):
        findings("MW401", experiments=["nope"])
