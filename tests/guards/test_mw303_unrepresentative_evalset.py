"""MW303 unrepresentative-evalset."""

from __future__ import annotations

import pytest

from modelward.errors import ConfigError
from modelward.evals.representativeness.sampling import rebuild
from modelward.ledger import evals as ledger_evals

from ..evals.mix import DAY, NOW, T0, register_evalset, thumbs_up_items, traffic
from .builders import move


def _ran(store, digest: str, at: int, status: str = "completed") -> None:
    with store.write() as conn:
        run = ledger_evals.start_run(conn, evalset_digest=digest, prompt_alias=None,
                                     prompt_digest=None, model_alias=None, model_digest=None,
                                     runner=None, harness_version="test", scorers=[], at=at)
        ledger_evals.finish_run(conn, run, status=status, n_items=1, summary={}, at=at + 1)


def _key(f) -> str:
    return f.evidence.get("segment") or f.evidence.get("source") or f.evidence["problem"]


def test_MW303_fires_for_a_thumbs_up_set_that_under_represents_enterprise(ledger, findings):
    ids = traffic(ledger.store)
    digest = register_evalset(ledger.store, thumbs_up_items(ids), "support-evals", version="v2")
    move(ledger.store, "evals/support", digest, T0)
    found = {_key(f): f for f in findings("MW303")}
    # topic=api (4 of 40 items, 30% of traffic) is within what chance gives 40 items
    assert sorted(found) == ["thumbs_up", "tier=enterprise", "topic=sso"]
    f = found["tier=enterprise"]
    subject = f"support-evals@v2 ({digest[:19]}…)"
    assert (f.subject, f.severity) == (subject, "warning")
    assert f.message == (
        f"{subject} under-represents tier=enterprise: 30.0% of 1,000 decisions since "
        "2026-02-01T12:00:00Z, 5.0% of 40 items (ratio 0.17; below 0.5; exact p = 0.00013, "
        "0.00078 adjusted over 6 segments); tier: total variation 0.300, chi-square "
        "p = 0.00033")
    assert {k: v for k, v in f.evidence.items() if "p_value" not in k} == {
        "evalset": digest, "segment": "tier=enterprise", "by": "tier", "traffic_share": 0.3,
        "eval_share": 0.05, "ratio": 0.1667, "segment_decisions": 300, "decisions": 1000,
        "segment_items": 2, "items": 40, "since": "2026-02-01T12:00:00Z", "tvd": 0.3,
        "segments_judged": 6, "alpha": 0.01}
    assert f.evidence["p_value"] == pytest.approx(3.2992e-4, rel=1e-4)
    assert f.evidence["segment_p_value"] == pytest.approx(1.3065e-4, rel=1e-4)
    assert f.evidence["adjusted_p_value"] == pytest.approx(7.839e-4, rel=1e-3)
    s = found["thumbs_up"]
    assert s.message == (f"{subject} takes 90.0% of its 40 items from thumbs_up feedback "
                         "(more than 50%)")
    assert s.evidence == {"evalset": digest, "source": "thumbs_up", "items": 40,
                          "source_items": 36, "source_share": 0.9, "max_source_share": 0.5}
    assert len({x.fingerprint for x in found.values()}) == 3


def test_MW303_clean_for_a_stratified_rebuild_on_a_realistic_ledger(ledger, fleet, findings,
                                                                    tmp_path):
    traffic(ledger.store)
    res = rebuild(ledger.store, size=120, stratify=["tier", "topic"], since=NOW - 30 * DAY,
                  until=NOW, window="30d", name="support-sampled", out=tmp_path / "s.jsonl",
                  seed=11)
    move(ledger.store, "evals/support", res.digest, T0 + DAY)
    _ran(ledger.store, res.digest, NOW - DAY)
    assert findings("MW303") == []


def test_MW303_clean_on_a_realistic_ledger(fleet, findings):
    assert findings("MW303") == []  # segments in traffic, but no eval set is live


def test_MW303_judges_sets_a_recent_completed_run_used_or_those_configured(ledger, findings):
    ids = traffic(ledger.store)
    items = thumbs_up_items(ids)
    recent = register_evalset(ledger.store, items, "recent")
    old = register_evalset(ledger.store, items[:-1], "old")
    failed = register_evalset(ledger.store, items[:-2], "failed")
    named = register_evalset(ledger.store, items[:-3], "named")
    _ran(ledger.store, recent, NOW - DAY)
    _ran(ledger.store, old, NOW - 40 * DAY)
    _ran(ledger.store, failed, NOW - DAY, status="failed")
    assert {f.evidence["evalset"] for f in findings("MW303")} == {recent}
    move(ledger.store, "evals/named", named, T0)
    move(ledger.store, "evals/old", old, NOW + DAY)  # after now: not live yet
    assert {f.evidence["evalset"] for f in findings("MW303")} == {recent, named}
    got = findings("MW303", evalsets=["old", "evals/named", failed])
    assert {f.evidence["evalset"] for f in got} == {old, named, failed}
    got = findings("MW303", evalsets="old, evals/named")  # a list option as comma-separated text
    assert {f.evidence["evalset"] for f in got} == {old, named}
    with pytest.raises(ConfigError, match="check.MW303.evalsets: 'nope' is not a digest, an "
                                          "alias or the name of an evalset artifact"):
        findings("MW303", evalsets=["nope"])


def test_MW303_thresholds_window_and_dimensions_are_configurable(ledger, findings):
    ids = traffic(ledger.store)
    digest = register_evalset(ledger.store, thumbs_up_items(ids), "support-evals")
    move(ledger.store, "evals/support", digest, T0)
    segments = {_key(f) for f in findings("MW303", min_traffic_share=0.25, min_ratio=0.2,
                                          max_source_share=0.95)}
    assert segments == {"tier=enterprise"}
    assert {_key(f) for f in findings("MW303", by=["tier"], feedback_sources=[])} == {
        "tier=enterprise"}
    joint = {_key(f) for f in findings("MW303", by=["tier+topic"], feedback_sources=[])}
    assert joint == {"tier=enterprise, topic=sso"}
    # fewer decisions in the window than min_decisions: only the source mix is judged
    assert {_key(f) for f in findings("MW303", min_decisions=1001)} == {"thumbs_up"}
    # the check window (since) shortens the traffic window: the last 100 decisions are all
    # free tier, which the set over-represents
    assert findings("MW303", since=T0 + 900 * 60_000_000, by=["tier"],
                    feedback_sources=[]) == []
    assert findings("MW303", window="1h", by=["tier"], feedback_sources=[]) == []  # no traffic
    with pytest.raises(ConfigError, match="min_ratio"):
        findings("MW303", min_ratio="half")
    with pytest.raises(ConfigError, match="feedback_sources"):
        findings("MW303", feedback_sources=3)


def test_MW303_source_mix_fires_above_the_share_only(ledger, findings):
    traffic(ledger.store, {("free", "api"): 10})
    half = [{"id": str(i), "input": str(i), "source": "thumbs_down" if i < 5 else "sampled",
             "segments": {"tier": "free", "topic": "api"}} for i in range(10)]
    digest = register_evalset(ledger.store, half, "half")
    move(ledger.store, "evals/half", digest, T0)
    assert findings("MW303") == []  # exactly half is not "most"
    half[5]["source"] = "thumbs_down"
    more = register_evalset(ledger.store, half, "more")
    move(ledger.store, "evals/half", more, T0 + 1)
    [f] = findings("MW303")
    assert (f.evidence["source"], f.evidence["source_share"]) == ("thumbs_down", 0.6)


def test_MW303_reports_sets_it_cannot_judge(ledger, findings):
    traffic(ledger.store)
    bare = register_evalset(ledger.store, [{"id": str(i), "input": str(i)} for i in range(5)],
                            "bare")
    gone = register_evalset(ledger.store, [{"input": "x"}], "gone")
    ledger.store.blobs.delete(gone)
    move(ledger.store, "evals/bare", bare, T0)
    move(ledger.store, "evals/gone", gone, T0)
    found = {f.evidence["evalset"]: f for f in findings("MW303")}
    assert found[bare].message == (
        f"cannot compare bare ({bare[:19]}…) with traffic: none of its 5 items carries a "
        "segment (tier, topic) or links to a recorded decision")
    assert found[gone].message == (f"cannot judge gone ({gone[:19]}…): it has no readable "
                                   "payload (missing or corrupt)")
    assert found[gone].evidence == {"evalset": gone,
                                    "problem": "has no readable payload (missing or corrupt)"}
