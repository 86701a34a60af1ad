"""Promotion gates on every backend: each gate fails alone and passes when met, a refusal
names every failed gate and is recorded, an approval moves the alias with its evidence."""

from __future__ import annotations

import threading

import pytest

from modelward.errors import (
    NotFoundError,
    UnknownArtifactError,
    ValidationError,
)
from modelward.evals.safety.summary import REQUIREMENTS
from modelward.ledger import aliases, promotions
from modelward.ledger.promotions import Review
from modelward.registry import promotion
from modelward.registry.promotion import evaluate, select_evidence

from .promotion_world import (
    ALICE,
    BOB,
    CAROL,
    DANA,
    DAY,
    HOUR,
    MIN,
    T0,
    closure,
    eval_run,
    opens,
    put,
    set_roles,
    world,
)

# a passed safety comparison that meets the requirements MW205 and the gate count
PASSED = {"passed": True, "tolerances": {"harmful_refusal": 0.05, "over_refusal": 0.05},
          "suite": {"harmful": 108, "benign": 108}, "requirements": dict(REQUIREMENTS),
          "base": {"error_share": 0.0}, "candidate": {"error_share": 0.0}}


def short(digest: str) -> str:
    return digest[:19] + "…"


def gates(store, request_id: str, approver: str, at: int, max_age: int = 30 * DAY):
    with store.read() as conn:
        req = promotions.get_request(conn, request_id)
        return [f.to_dict() for f in evaluate(conn, req, approver, at=at,
                                              max_age=max_age).failures]


def test_approval_with_every_gate_passed_moves_the_alias_with_its_evidence(ledger):
    store = ledger.store
    w = world(store)
    req = promotion.request(store, w.alias, w.v4, ALICE, reason="better refusals", at=T0)
    assert (req.status, req.requester, req.evidence_run_id) == ("pending", ALICE, None)
    opens(store, w.run, BOB, T0 + 10 * MIN)
    res = promotion.approve(store, req.id, "  Bob@Example.com ", at=T0 + 30 * MIN)
    assert res.outcome == "approved" and res.evaluation.failures == []
    assert res.evaluation.evidence.id == w.run and res.evaluation.opened_at == T0 + 10 * MIN
    with store.read() as conn:
        assert aliases.resolve_at(conn, w.alias).digest == w.v4
        event = aliases.latest_event(conn, w.alias)
        [review] = promotions.reviews(conn, request_ids=[req.id])
        assert promotions.get_request(conn, req.id).status == "approved"
    assert (event.kind, event.actor, event.at, event.previous_digest) == (
        "promote", BOB, T0 + 30 * MIN, w.v3)
    assert event.reason == f"promotion {req.id}: better refusals"
    assert event.evidence == {"request_id": req.id, "requester": ALICE, "approver": BOB,
                              "evidence_run_id": w.run, "overridden_gates": []}
    assert review == Review(id=review.id, request_id=req.id, approver=BOB, at=T0 + 30 * MIN,
                            outcome="approved", failed_gates=[], override_reason=None,
                            alias_event_id=event.id, evidence_run_id=w.run)
    assert res.event == event and res.review == review
    with pytest.raises(ValidationError, match=f"request {req.id} is already approved"):
        promotion.approve(store, req.id, CAROL, at=T0 + HOUR)


def test_a_refusal_names_every_failed_gate_records_it_and_moves_nothing(ledger):
    store = ledger.store
    w = world(store)
    old = eval_run(store, evalset=w.qa, model=w.v3, prompt=w.prompt, finished_at=T0 - 40 * DAY)
    with store.write() as conn:
        promotions.deprecate(conn, w.qa, reason="leaked into training", actor=CAROL,
                             at=T0 - 2 * DAY)
    req = promotion.request(store, w.alias, w.v4, ALICE, evidence_run_id=old, at=T0)
    opens(store, old, DANA, T0 + 2 * HOUR)  # after the attempt: it does not count
    res = promotion.approve(store, req.id, DANA, at=T0 + HOUR)
    expected = [
        {"gate": "reviewer", "message": f"{DANA} is not a reviewer of record for chat/v1 "
                                        f"(its reviewers: {BOB}, {CAROL})"},
        {"gate": "roster", "message": f"{DANA} has left the team"},
        {"gate": "opened", "message": f"{DANA} has not opened the evidence, eval run {old}: "
                                      f"`modelward eval show {old} --as {DANA}`"},
        {"gate": "fresh", "message": f"eval run {old} finished 2026-01-20T12:00:00Z, older "
                                     "than evidence_max_age (30d)"},
        {"gate": "evalset", "message": f"eval run {old} scored evalset qa@1 ({short(w.qa)}), "
                                       "deprecated 2026-02-27T12:00:00Z: leaked into training"},
        {"gate": "digest", "message": f"eval run {old} scored prompt support@38 "
                                      f"({short(w.prompt)}) and model chat@v3 ({short(w.v3)}), "
                                      f"not model chat@v4 ({short(w.v4)})"},
    ]
    assert res.outcome == "refused" and res.event is None
    assert [f.to_dict() for f in res.evaluation.failures] == expected
    with store.read() as conn:
        assert aliases.resolve_at(conn, w.alias).digest == w.v3
        [review] = promotions.reviews(conn, request_ids=[req.id])
        assert promotions.get_request(conn, req.id).status == "pending"
    assert (review.outcome, review.approver, review.at, review.failed_gates,
            review.evidence_run_id, review.alias_event_id) == (
        "refused", DANA, T0 + HOUR, expected, old, None)
    # the same evidence for a reviewer who opened it: only the evidence gates remain
    opens(store, old, BOB, T0 + 2 * HOUR)
    assert [g["gate"] for g in gates(store, req.id, BOB, T0 + 3 * HOUR)] == [
        "fresh", "evalset", "digest"]
    assert gates(store, req.id, BOB, T0 + 3 * HOUR, max_age=50 * DAY)[0]["gate"] == "evalset"


def test_the_requester_cannot_approve_and_the_approver_must_be_in_the_roster(ledger):
    store = ledger.store
    w = world(store)
    set_roles(store, w.alias, reviewers=[ALICE, BOB])
    req = promotion.request(store, w.alias, w.v4, ALICE, at=T0)
    opens(store, w.run, ALICE, T0 + MIN)
    assert gates(store, req.id, ALICE, T0 + HOUR) == [
        {"gate": "requester", "message": f"{ALICE} requested this promotion and cannot also "
                                         "approve it"}]
    assert gates(store, req.id, "erin@example.com", T0 + HOUR)[:2] == [
        {"gate": "reviewer", "message": "erin@example.com is not a reviewer of record for "
                                        f"chat/v1 (its reviewers: {ALICE}, {BOB})"},
        {"gate": "roster", "message": "erin@example.com is not in the roster"}]
    set_roles(store, w.alias, reviewers=[])
    assert gates(store, req.id, BOB, T0 + HOUR)[0] == {
        "gate": "reviewer", "message": f"{BOB} is not a reviewer of record for chat/v1 (it "
                                       "has none: `modelward alias owners chat/v1 --reviewer "
                                       "EMAIL`)"}


def test_without_a_roster_nobody_passes_the_roster_gate(ledger):
    store = ledger.store
    model = put(store, "model", b"m", "m", "1")
    qa = put(store, "evalset", b'{"id": "1", "input": {}, "expected": "x"}\n', "qa")
    run = eval_run(store, evalset=qa, model=model, finished_at=T0 - HOUR)
    set_roles(store, "m/prod", reviewers=[BOB])  # allowed: there is no roster to check
    req = promotion.request(store, "m/prod", model, ALICE, at=T0)
    opens(store, run, BOB, T0)
    assert gates(store, req.id, BOB, T0 + HOUR) == [
        {"gate": "roster", "message": f"{BOB} is not in the roster (there is none: "
                                      "`modelward people sync FILE.csv`)"}]


def test_default_evidence_is_the_latest_completed_task_run_on_exactly_this_digest(ledger):
    store = ledger.store
    w = world(store)
    qa2 = put(store, "evalset", b'{"id": "b", "input": {"q": "3+3"}, "expected": "6"}\n',
              "qa", "2")
    newer = eval_run(store, evalset=qa2, model=w.v4, prompt=w.prompt, finished_at=T0 - HOUR)
    on_prompt = eval_run(store, evalset=qa2, model=w.v3, prompt=w.prompt,
                         finished_at=T0 - MIN)
    eval_run(store, evalset=qa2, model=w.v4, finished_at=T0 - 2 * MIN, status="failed")
    eval_run(store, evalset=qa2, model=w.v4, finished_at=T0 - 2 * MIN, status="running")
    eval_run(store, evalset=qa2, model=w.v4, finished_at=T0 + HOUR)  # after the moment
    eval_run(store, evalset=qa2, model=w.v4, finished_at=T0 - MIN, kind="safety",
             summary={**PASSED})
    with store.read() as conn:
        assert select_evidence(conn, w.v4, T0).id == newer
        assert select_evidence(conn, w.prompt, T0).id == on_prompt
        assert select_evidence(conn, w.v4, T0 - 2 * HOUR).id == w.run
        assert select_evidence(conn, w.v4, T0 - 2 * DAY) is None
    with store.write() as conn:
        promotions.deprecate(conn, qa2, reason="retired", at=T0 - 30 * MIN)
    with store.read() as conn:
        assert select_evidence(conn, w.v4, T0).id == w.run  # the non-deprecated one
        assert select_evidence(conn, w.v4, T0 - 40 * MIN).id == newer  # not deprecated yet
    with store.write() as conn:
        promotions.deprecate(conn, w.qa, reason="retired too", at=T0 - 20 * MIN)
    with store.read() as conn:  # all deprecated: the latest, so the gate names it
        assert select_evidence(conn, w.v4, T0).id == newer


def test_named_evidence_must_be_a_completed_task_run(ledger):
    store = ledger.store
    w = world(store)
    safety = eval_run(store, evalset=w.qa, model=w.v4, kind="safety", finished_at=T0 - MIN,
                      summary={**PASSED})
    running = eval_run(store, evalset=w.qa, model=w.v4, finished_at=T0, status="running")
    for run, message in ((safety, f"eval run {safety} is a safety eval, not a task eval"),
                         (running, f"eval run {running} is running, not completed")):
        req = promotion.request(store, w.alias, w.v4, ALICE, evidence_run_id=run, at=T0)
        assert gates(store, req.id, BOB, T0 + HOUR) == [{"gate": "evidence",
                                                         "message": message}]
        with store.write() as conn:
            promotions.set_status(conn, req.id, "withdrawn")
    with pytest.raises(NotFoundError, match="no eval run 'nope'"):
        promotion.request(store, w.alias, w.v4, ALICE, evidence_run_id="nope")
    fresh = put(store, "model", b"untested", "chat", "v5")
    req = promotion.request(store, w.alias, fresh, ALICE, at=T0)
    assert gates(store, req.id, BOB, T0 + HOUR) == [{
        "gate": "evidence", "message": f"no completed task eval run scored model chat@v5 "
                                       f"({short(fresh)}); run one with `modelward eval run`"}]


def fine_tune_world(store):
    """The promotion world and a fine-tune of chat@v3 with a complete closure and opened
    task evidence: every gate but ``safety`` passes for it."""
    w = world(store)
    tuned = put(store, "model", b"chat-ft", "chat-ft", "1", parents=[(w.v3, "base")])
    closure(store, tuned, complete=True, at=T0 - DAY)
    run = eval_run(store, evalset=w.qa, model=tuned, finished_at=T0 - HOUR)
    opens(store, run, BOB, T0 - 30 * MIN)
    return w, tuned


def test_a_fine_tune_needs_a_passed_safety_comparison(ledger):
    store = ledger.store
    w, tuned = fine_tune_world(store)
    req = promotion.request(store, w.alias, tuned, ALICE, at=T0)
    name = f"model chat-ft@1 ({short(tuned)}) is fine-tuned from {short(w.v3)}"
    assert gates(store, req.id, BOB, T0) == [{"gate": "safety", "message": f"{name} with no "
                                              "safety comparison (a completed safety eval run "
                                              "on this digest)"}]

    def safety(at, summary, **kw):
        return eval_run(store, evalset=w.qa, model=kw.pop("model", tuned), kind="safety",
                        finished_at=at, summary=summary, meta={"base": w.v3}, **kw)

    def not_passed(run_id):
        return [{"gate": "safety", "message": f"{name} and its latest safety comparison "
                                              f"against its base model chat@v3 "
                                              f"({short(w.v3)}), eval run {run_id}, did not "
                                              "pass"}]

    failed = safety(T0 + MIN, {"passed": False, "refusal_drop": 0.21})
    assert gates(store, req.id, BOB, T0 + 2 * MIN) == not_passed(failed)
    safety(T0 + 3 * MIN, PASSED, model=w.v4)  # another digest's comparison
    odd = safety(T0 + 4 * MIN, {"passed": "yes"})  # read defensively: only True passes
    assert gates(store, req.id, BOB, T0 + 5 * MIN) == not_passed(odd)
    bare = safety(T0 + 6 * MIN, {})
    safety(T0 + 7 * MIN, PASSED, status="failed")  # the run itself failed
    assert gates(store, req.id, BOB, T0 + 8 * MIN) == not_passed(bare)
    loose = safety(T0 + 9 * MIN, {**PASSED, "tolerances": {"harmful_refusal": 1.0,
                                                             "over_refusal": 0.05}})
    assert gates(store, req.id, BOB, T0 + 10 * MIN) == [{
        "gate": "safety", "message": f"{name} and its latest safety comparison against its "
        f"base model chat@v3 ({short(w.v3)}), eval run {loose}, passed but cannot count: its "
        "harmful refusal tolerance 1.0 is looser than 5.0 points"}]
    safety(T0 + 11 * MIN, {**PASSED, "harmful_refusal": 0.97})
    assert gates(store, req.id, BOB, T0 + 12 * MIN) == []
    assert gates(store, req.id, BOB, T0 + 2 * MIN) == not_passed(failed)  # as it stood then


def test_the_safety_gate_and_MW205_give_one_verdict(ledger):
    """A fine-tune compared only against a model other than its recorded base: the gate
    refused to let it through exactly when MW205 would flag it once it served."""
    from modelward.evals.safety.standing import standing
    from modelward.guards import run_guard
    from modelward.ledger import artifacts

    store = ledger.store
    w, tuned = fine_tune_world(store)
    # passed, but against chat@v4: says nothing about what tuning chat@v3 changed
    other = eval_run(store, evalset=w.qa, model=tuned, kind="safety", finished_at=T0 - HOUR,
                     summary={**PASSED}, meta={"base": w.v4})
    req = promotion.request(store, w.alias, tuned, ALICE, at=T0)
    name = f"model chat-ft@1 ({short(tuned)}) is fine-tuned from {short(w.v3)}"
    refused = [{"gate": "safety", "message": f"{name} and was compared for safety only "
                                             f"against model chat@v4 ({short(w.v4)}), never "
                                             f"against its base model chat@v3 ({short(w.v3)}) "
                                             "(a comparison with another model says nothing "
                                             "about what tuning changed)"}]
    assert gates(store, req.id, BOB, T0) == refused
    with store.read() as conn:
        st = standing(conn, artifacts.get(conn, tuned), T0)
    assert (st.problem, st.run.id, st.compared_bases) == ("other-base", other, [w.v4])

    def verdicts(at):
        """(the gate's safety failures, MW205's findings on the fine-tune) at ``at``."""
        gate = [f for f in gates(store, req.id, BOB, at) if f["gate"] == "safety"]
        found = [f for f in run_guard(store, store.settings, "MW205", now=at)
                 if f.subject == tuned]
        return gate, found

    # served anyway (an override): MW205 fires for the same reason the gate refused
    res = promotion.approve(store, req.id, BOB, override=True, reason="demo day", at=T0 + MIN)
    assert res.outcome == "overridden"
    gate, found = verdicts(T0 + 2 * MIN)
    assert gate == refused and [f.evidence["problem"] for f in found] == ["other-base"]
    # compared against its base and passed: the gate passes and MW205 is quiet
    eval_run(store, evalset=w.qa, model=tuned, kind="safety", finished_at=T0 + 3 * MIN,
             summary={**PASSED}, meta={"base": w.v3})
    assert verdicts(T0 + 4 * MIN) == ([], [])
    # a later failed comparison against its base: both refuse again
    failed = eval_run(store, evalset=w.qa, model=tuned, kind="safety",
                      finished_at=T0 + 5 * MIN, summary={"passed": False}, meta={"base": w.v3})
    gate, found = verdicts(T0 + 6 * MIN)
    assert [g["message"].endswith(f"eval run {failed}, did not pass") for g in gate] == [True]
    assert [(f.evidence["problem"], f.evidence["run"]) for f in found] == [("regressed",
                                                                            failed)]


def test_a_trained_artifact_needs_a_complete_closure(ledger):
    store = ledger.store
    w = world(store)
    marked = put(store, "model", b"chat-rl", "chat-rl", meta={"trained": True})
    captured = put(store, "model", b"chat-captured", "chat-cap")
    adapter = put(store, "adapter", b"lora", "support-lora", "3")
    reqs = {}
    for digest in (marked, captured, adapter):
        run = eval_run(store, evalset=w.qa, model=digest, finished_at=T0 - HOUR)
        opens(store, run, BOB, T0 - 30 * MIN)
        reqs[digest] = promotion.request(store, w.alias, digest, ALICE, at=T0).id
    head = f"model chat-rl ({short(marked)}) is a trained artifact (marked trained)"
    assert gates(store, reqs[marked], BOB, T0) == [
        {"gate": "closure", "message": f"{head} with no complete training closure"}]
    partial = closure(store, marked, complete=False, at=T0 - HOUR)
    assert gates(store, reqs[marked], BOB, T0) == [
        {"gate": "closure", "message": f"{head} with no complete training closure; its "
                                       f"latest closure {short(partial)} is incomplete"}]
    closure(store, marked, complete=True, at=T0 + HOUR)
    assert len(gates(store, reqs[marked], BOB, T0)) == 1  # captured after that moment
    assert gates(store, reqs[marked], BOB, T0 + 2 * HOUR) == []
    only = closure(store, captured, complete=False, at=T0 - HOUR)
    assert gates(store, reqs[captured], BOB, T0) == [{
        "gate": "closure", "message": f"model chat-cap ({short(captured)}) is a trained "
                                      "artifact (it has a training closure) with no complete "
                                      f"training closure; its latest closure {short(only)} is "
                                      "incomplete"}]
    lora = f"adapter support-lora@3 ({short(adapter)})"
    assert gates(store, reqs[adapter], BOB, T0) == [
        {"gate": "safety", "message": f"{lora} is an adapter with no safety comparison (a "
                                      "completed safety eval run on this digest)"},
        {"gate": "closure", "message": f"{lora} is a trained artifact (an adapter) with no "
                                       "complete training closure"}]


def test_an_override_needs_a_reason_approves_despite_the_gates_and_is_recorded(ledger):
    store = ledger.store
    w = world(store)
    req = promotion.request(store, w.alias, w.v4, ALICE, at=T0)
    for reason in (None, "   "):
        with pytest.raises(ValidationError) as exc:
            promotion.approve(store, req.id, CAROL, override=True, reason=reason, at=T0 + MIN)
        assert exc.value.field == "--reason"
    res = promotion.approve(store, req.id, CAROL, override=True, reason=" release train ",
                            at=T0 + MIN)  # carol never opened the evidence
    opened = {"gate": "opened", "message": f"{CAROL} has not opened the evidence, eval run "
                                           f"{w.run}: `modelward eval show {w.run} --as "
                                           f"{CAROL}`"}
    assert res.outcome == "overridden"
    assert res.event.evidence == {"request_id": req.id, "requester": ALICE, "approver": CAROL,
                                  "evidence_run_id": w.run, "overridden_gates": ["opened"],
                                  "override_reason": "release train"}
    assert (res.review.outcome, res.review.failed_gates, res.review.override_reason,
            res.review.alias_event_id) == ("overridden", [opened], "release train",
                                           res.event.id)
    with store.read() as conn:
        assert promotions.get_request(conn, req.id).status == "overridden"
        assert aliases.resolve_at(conn, w.alias).digest == w.v4
    # an override nobody needed is a plain approval
    again = promotion.request(store, w.alias, w.v3, ALICE, at=T0 + HOUR)
    eval_run(store, evalset=w.qa, model=w.v3, finished_at=T0 + HOUR)
    with store.read() as conn:
        run = select_evidence(conn, w.v3, T0 + 2 * HOUR)
    opens(store, run.id, BOB, T0 + HOUR)
    res = promotion.approve(store, again.id, BOB, override=True, reason="just in case",
                            at=T0 + 2 * HOUR)
    assert (res.outcome, res.review.override_reason) == ("approved", None)
    assert "override_reason" not in res.event.evidence


def test_requests_are_checked_when_filed(ledger):
    store = ledger.store
    w = world(store)
    with pytest.raises(UnknownArtifactError):
        promotion.request(store, w.alias, "sha256:" + "0" * 64, ALICE)
    with pytest.raises(ValidationError, match="chat/v1 already points at") as exc:
        promotion.request(store, w.alias, w.v3, ALICE)
    assert exc.value.field == "DIGEST"
    with pytest.raises(ValidationError) as exc:
        promotion.request(store, w.alias, w.v4, "alice")
    assert exc.value.message == "requester: not an e-mail address: 'alice'"
    with pytest.raises(ValidationError, match="not a valid alias name"):
        promotion.request(store, "bad alias", w.v4, ALICE)
    with pytest.raises(ValidationError, match="DIGEST"):
        promotion.request(store, w.alias, "sha256:nothex", ALICE)
    first = promotion.request(store, w.alias, w.v4, ALICE)
    with pytest.raises(ValidationError) as exc:
        promotion.request(store, w.alias, w.v4, BOB)
    assert exc.value.message == (f"DIGEST: request {first.id} already asks to point chat/v1 "
                                 f"at {w.v4}")
    with pytest.raises(ValidationError, match="not a request id"):
        promotion.approve(store, "42", BOB)
    with pytest.raises(NotFoundError, match="no promotion request"):
        promotion.approve(store, "01960000-0000-7000-8000-000000000000", BOB)


def test_two_reviewers_approving_at_once_move_the_alias_once(ledger):
    store = ledger.store
    w = world(store)
    req = promotion.request(store, w.alias, w.v4, ALICE, at=T0)
    for who in (BOB, CAROL):
        opens(store, w.run, who, T0 + MIN)
    results, errors = [], []

    def approve(who):
        try:
            results.append(promotion.approve(store, req.id, who, at=T0 + HOUR))
        except ValidationError as exc:
            errors.append(exc.message)

    threads = [threading.Thread(target=approve, args=(who,)) for who in (BOB, CAROL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.outcome for r in results] == ["approved"]
    assert errors == [f"REQUEST_ID: request {req.id} is already approved"]
    with store.read() as conn:
        assert [e.kind for e in aliases.history(conn, w.alias)] == ["create", "promote"]
        assert len(promotions.reviews(conn, request_ids=[req.id])) == 1
    assert results[0].review.approver in (BOB, CAROL)
