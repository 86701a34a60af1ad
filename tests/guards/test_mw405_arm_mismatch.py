"""MW405 arm-mismatch."""

from __future__ import annotations

from modelward.rollout.assignment import Experiment
from modelward.timefmt import iso

from ..rollout.world import NOW, T0, canary_arm, count_exposures, create, expose


def test_MW405_fires_when_the_arms_came_from_another_bucketing(ledger, findings):
    exp = create(ledger.store, "refund-canary", "r:1")
    subjects = [str(i) for i in range(1, 2001)]
    expose(ledger.store, "refund-canary", [(s, canary_arm(s)) for s in subjects], step=1000)
    (f,) = findings("MW405")
    wrong = [s for s in subjects if exp.assign(s) != canary_arm(s)]
    ev = f.evidence
    assert (f.code, f.severity, f.subject) == ("MW405", "warning", "refund-canary")
    assert ev["mismatched_exposures"] == ev["mismatched_subjects"] == len(wrong) > 100
    assert (ev["exposures"], ev["subjects"]) == (2000, 2000)
    assert ev["examples"] == wrong[:5]
    assert ev["first"] == iso(T0 + 1000 * subjects.index(wrong[0]))
    assert ev["last"] == iso(T0 + 1000 * subjects.index(wrong[-1]))
    assert sum(p["exposures"] for p in ev["arms"]) == len(wrong)
    assert {(p["recorded"], p["salt"]) for p in ev["arms"]} == {
        ("treatment", "control"), ("control", "treatment")}
    assert f.message.startswith(f"refund-canary: {len(wrong):,} of 2,000 exposures "
                                f"({len(wrong):,} of 2,000 subjects) record an arm the salt "
                                f"does not give, {ev['first']} to {ev['last']} (")
    assert f.message.endswith("; e.g. " + ", ".join(wrong[:5]))
    assert len(findings("MW405", examples=2)[0].evidence["examples"]) == 2
    assert findings("MW405", since=NOW + 1) == []  # outside the window: not judged


def test_MW405_one_wrong_exposure_among_many_right_ones(ledger, findings):
    exp = create(ledger.store, "checkout-v2", "c:1", arms="control=50,treatment=50")
    pairs = [(f"u-{i}", exp.assign(f"u-{i}")) for i in range(500)]
    expose(ledger.store, "checkout-v2", pairs)
    assert findings("MW405") == []
    flipped = "treatment" if exp.assign("u-7") == "control" else "control"
    expose(ledger.store, "checkout-v2", [("u-7", flipped)], start=T0 + 10**9)
    (f,) = findings("MW405")
    assert f.evidence["mismatched_exposures"] == f.evidence["mismatched_subjects"] == 1
    assert f.evidence["examples"] == ["u-7"] and f.evidence["subjects"] == 500
    assert f.evidence["arms"] == [{"recorded": flipped, "salt": exp.assign("u-7"),
                                   "exposures": 1}]


def test_MW405_clean_for_exposures_recorded_by_the_sdk(ledger, fleet, findings):
    """The control: the SDK's expose() without an arm records exactly the salt's arm."""
    create(ledger.store, "answer-style", "a:1", arms="control=90,a=5,b=5")
    exp = ledger.experiment("answer-style")
    for i in range(3000):
        ledger.expose(exp, f"user-{i}", at=T0 + i)
    ledger.flush()
    assert count_exposures(ledger.store) == 3000
    assert findings("MW405") == []
    # and the same Experiment object the guard builds assigns what the SDK did
    assert Experiment("answer-style", "a:1", "control=90,a=5,b=5").assign("user-1") == \
        exp.assign("user-1")
