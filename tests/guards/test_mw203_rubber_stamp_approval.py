"""MW203 rubber-stamp-approval: promotions approved by a non-reviewer, without opening the
evidence, implausibly fast, with an override, or around the gates altogether."""

from __future__ import annotations

from modelward.ledger import aliases, people
from modelward.registry import promotion
from modelward.timefmt import iso
from tests.registry.promotion_world import (
    ALICE,
    BOB,
    CAROL,
    DANA,
    ROSTER,
    eval_run,
    opens,
    set_roles,
)

from .builders import DAY, HOUR, MIN, NOW, T0, move, put

QA = b'{"id": "a", "input": {"q": "2+2"}, "expected": "4"}\n'


def short(digest: str) -> str:
    return digest[:19] + "…"


def team(store, fleet) -> dict:
    """chat/prod at chat@v3, reviewed by bob and carol; three candidates with fresh evals."""
    people.sync(store, ROSTER, at=T0 - 30 * DAY)
    move(store, "chat/prod", fleet["v3"], T0 - DAY)
    set_roles(store, "chat/prod", owners=[ALICE], reviewers=[BOB, CAROL], at=T0 - DAY)
    qa = put(store, "evalset", QA, "qa", "1")
    models = [fleet["v4"], put(store, "model", b"weights-v5", "chat", "v5"),
              put(store, "model", b"weights-v6", "chat", "v6")]
    runs = [eval_run(store, evalset=qa, model=m, finished_at=T0 - HOUR) for m in models]
    return {"models": models, "runs": runs}


def judged(findings, **options) -> list:
    """MW203's findings in the order the promotions happened."""
    return sorted(findings("MW203", **options), key=lambda f: f.evidence["at"])


def promote(store, digest, run, approver, *, at, opened=None, override=None,
            requester=ALICE):
    """A request at ``at``; the approver opens the evidence ``opened`` later (if given) and
    approves ``at + 1h``."""
    req = promotion.request(store, "chat/prod", digest, requester, at=at)
    if opened is not None:
        opens(store, run, approver, at + opened)
    res = promotion.approve(store, req.id, approver, at=at + HOUR,
                            override=override is not None, reason=override)
    assert res.outcome != "refused", res.evaluation.failures
    return req.id


def test_MW203_fires_for_overrides_unopened_evidence_and_fast_approvals(ledger, fleet,
                                                                        findings):
    store = ledger.store
    t = team(store, fleet)
    v4, v5, v6 = t["models"]
    r4, r5, r6 = t["runs"]
    # carol overrides the gate she failed: she never opened the evidence
    first = promote(store, v4, r4, CAROL, at=T0, override="release train")
    # bob opened the evidence 58 minutes in and approved two minutes later
    second = promote(store, v5, r5, BOB, at=T0 + 2 * HOUR, opened=58 * MIN)
    # dana, who left and never reviewed chat/prod, overrides after reading for 10 minutes
    third = promote(store, v6, r6, DANA, at=T0 + 4 * HOUR, opened=50 * MIN,
                    override="on call")
    found = judged(findings)
    assert [f.evidence["request"] for f in found] == [first, second, third]
    assert [f.evidence["problems"] for f in found] == [
        ["not-opened", "override"], ["fast"], ["non-reviewer", "override"]]
    assert found[0].message == (
        f"chat/prod -> model chat@v4 ({short(v4)}) approved by {CAROL} at "
        f"{iso(T0 + HOUR)} (request {first}): approved without opening the evidence, eval run "
        f"{r4}; approved with an override of the gates opened: release train")
    assert found[1].message.endswith(
        f"(request {second}): approved 2m after opening the evidence (min_review_time 5m)")
    assert found[2].message.endswith(
        f"(request {third}): approved by a non-reviewer: {DANA} is not a reviewer of record "
        f"for chat/prod (its reviewers: {BOB}, {CAROL}); {DANA} has left the team; approved "
        "with an override of the gates reviewer, roster: on call")
    assert found[0].evidence["override_reason"] == "release train"
    assert found[2].evidence["evidence_run"] == r6 and found[2].severity == "warning"
    # a longer min_review_time makes the 10-minute read too fast as well; 0s turns it off
    assert judged(findings, min_review_time="15m")[2].evidence["problems"] == [
        "non-reviewer", "fast", "override"]
    assert [f.evidence["problems"] for f in judged(findings, min_review_time="0s")] == [
        ["not-opened", "override"], ["non-reviewer", "override"]]
    # --since judges only the promotions at or after it
    assert [f.evidence["request"] for f in findings("MW203", since=T0 + 4 * HOUR)] == [third]


def test_MW203_fires_for_a_self_approval_and_a_promotion_made_around_the_gates(ledger, fleet,
                                                                              findings):
    store = ledger.store
    t = team(store, fleet)
    set_roles(store, "chat/prod", reviewers=[ALICE, BOB], at=T0)
    own = promote(store, t["models"][0], t["runs"][0], ALICE, at=T0, opened=10 * MIN,
                  override="nobody else around")
    with store.write() as conn:  # written straight to the ledger, no request, no review
        event, _ = aliases.set_alias(conn, "chat/prod", t["models"][1], at=T0 + 3 * HOUR,
                                     actor="ops@example.com", kind="promote",
                                     evidence={"eval_run": t["runs"][1]})
    found = judged(findings)
    assert [(f.evidence["request"], f.evidence["alias_event"], f.evidence["problems"])
            for f in found] == [(own, found[0].evidence["alias_event"],
                                 ["self-approval", "override"]),
                                (None, event.id, ["no-review"])]
    assert found[1].message == (
        f"chat/prod -> model chat@v5 ({short(t['models'][1])}) approved by ops@example.com at "
        f"{iso(T0 + 3 * HOUR)} (alias event {event.id}): moved by a promote event "
        "(ops@example.com) that no approved promotion request records")


def test_MW203_clean_for_reviewed_approvals_refusals_and_plain_moves(ledger, fleet, findings):
    store = ledger.store
    t = team(store, fleet)
    v4, v5, _v6 = t["models"]
    # a refusal first (bob had not opened it), then the real review
    req = promotion.request(store, "chat/prod", v4, ALICE, at=T0)
    assert promotion.approve(store, req.id, BOB, at=T0 + 5 * MIN).outcome == "refused"
    opens(store, t["runs"][0], BOB, T0 + 20 * MIN)
    assert promotion.approve(store, req.id, BOB, at=T0 + 50 * MIN).outcome == "approved"
    # a reviewer who read the evidence before the request came in
    opens(store, t["runs"][1], CAROL, T0 - 50 * MIN)
    later = promotion.request(store, "chat/prod", v5, ALICE, at=T0 + 2 * HOUR)
    assert promotion.approve(store, later.id, CAROL, at=T0 + 2 * HOUR + MIN).outcome == (
        "approved")
    move(store, "chat/prod", fleet["v3"], T0 + 5 * HOUR)  # a plain rollback is not a promotion
    assert findings("MW203") == []
    assert findings("MW203", now=NOW + DAY) == []
