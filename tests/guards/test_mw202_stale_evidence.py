"""MW202 stale-evidence: the eval behind a live model or prompt is too old, on a
deprecated eval set, or scored another digest."""

from __future__ import annotations

from modelward.ledger import promotions
from modelward.timefmt import iso
from tests.registry.promotion_world import eval_run

from .builders import DAY, HOUR, NOW, T0, move, put

QA = b'{"id": "a", "input": {"q": "2+2"}, "expected": "4"}\n'


def short(digest: str) -> str:
    return digest[:19] + "…"


def deprecate(store, digest: str, at: int, reason: str = "leaked into training") -> None:
    with store.write() as conn:
        promotions.deprecate(conn, digest, reason=reason, actor="eval@example.com", at=at)


def test_MW202_fires_for_stale_deprecated_and_other_digest_evidence(ledger, fleet, findings):
    store = ledger.store
    v3, v4, p38 = fleet["v3"], fleet["v4"], fleet["p38"]
    qa = put(store, "evalset", QA, "qa", "1")
    qa2 = put(store, "evalset", QA + b"\n", "qa", "2")
    stale = eval_run(store, evalset=qa2, model=v3, prompt=fleet["p37"],
                     finished_at=NOW - 40 * DAY)
    deprecated = eval_run(store, evalset=qa, model=fleet["old"], prompt=p38,
                          finished_at=NOW - DAY)
    deprecate(store, qa, NOW - HOUR)
    v5 = put(store, "model", b"weights-v5", "chat", "v5")
    move(store, "chat/canary", v4, T0)
    behind = eval_run(store, evalset=qa2, model=v4, model_alias="chat/canary",
                      finished_at=T0 + HOUR)
    move(store, "chat/canary", v5, T0 + DAY)  # moved on; nobody scored v5
    found = {f.subject: f for f in findings("MW202")}
    assert sorted(found) == ["chat/canary", "chat/v1", "prompt/support@production"]
    assert found["chat/v1"].message == (
        f"chat/v1 points at model chat@v3 ({short(v3)}): eval run {stale} finished "
        f"{iso(NOW - 40 * DAY)}, older than evidence_max_age (30d)")
    assert found["prompt/support@production"].message == (
        f"prompt/support@production points at prompt support@38 ({short(p38)}): eval run "
        f"{deprecated} scored evalset qa@1 ({short(qa)}), deprecated {iso(NOW - HOUR)}: "
        "leaked into training")
    assert found["chat/canary"].message == (
        f"chat/canary points at model chat@v5 ({short(v5)}) and no completed task eval run "
        f"scored it; the latest eval behind chat/canary, run {behind}, finished "
        f"{iso(T0 + HOUR)}, scored model chat@v4 ({short(v4)})")
    assert [found[a].evidence["problem"] for a in sorted(found)] == [
        "other-digest", "fresh", "evalset"]
    assert found["chat/v1"].evidence["run"] == stale and found["chat/v1"].severity == "warning"
    # a longer max_age accepts the old run; a deprecation after NOW does not count yet
    assert "chat/v1" not in {f.subject for f in findings("MW202", max_age="60d")}
    assert {f.subject for f in findings("MW202", now=NOW - 2 * HOUR)} == {
        "chat/canary", "chat/v1"}


def test_MW202_clean_when_fresh_evidence_backs_every_live_model_and_prompt(ledger, fleet,
                                                                          findings):
    store = ledger.store
    v3, p38 = fleet["v3"], fleet["p38"]
    # no eval at all yet: nothing is "behind" any alias (MW301 reports unscored use)
    assert findings("MW202") == []
    qa = put(store, "evalset", QA, "qa", "1")
    qa2 = put(store, "evalset", QA + b"\n", "qa", "2")
    # the prompt alias's eval scored the previous prompt, then the current one
    eval_run(store, evalset=qa, model=v3, prompt=fleet["p37"], prompt_alias=
             "prompt/support@production", finished_at=T0 + HOUR)
    eval_run(store, evalset=qa, model=v3, prompt=p38, prompt_alias="prompt/support@production",
             finished_at=T0 + 4 * HOUR)
    # a later run on a deprecated set does not hide the good one
    eval_run(store, evalset=qa2, model=v3, finished_at=NOW - HOUR)
    deprecate(store, qa2, NOW - 2 * HOUR)
    eval_run(store, evalset=qa, model=v3, finished_at=NOW - 5 * DAY, status="failed")
    assert findings("MW202") == []
