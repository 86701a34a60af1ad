"""Eval coverage on every backend: each pair production used is scored, unscored or not
judged, and the unscored ones are exactly MW301's findings."""

from __future__ import annotations

from modelward.evals.coverage import coverage
from modelward.guards import run_guard
from modelward.ledger import evals as ledger_evals

from ..guards.builders import DAY, HOUR, MIN, NOW, T0, put, record


def scored(store, prompt, model, at, *, status="completed", kind="task") -> str:
    with store.write() as conn:
        run_id = ledger_evals.start_run(
            conn, evalset_digest="sha256:" + "e" * 64, prompt_alias=None, prompt_digest=prompt,
            model_alias=None, model_digest=model, runner="tests:runner",
            harness_version="test", scorers=["exact"], kind=kind, at=at - 5 * MIN)
        if status != "running":
            ledger_evals.finish_run(conn, run_id, status=status, n_items=3, summary={"n": 3},
                                    at=at)
    return run_id


def test_each_pair_is_scored_unscored_or_not_judged_as_MW301_judges_it(ledger):
    s = ledger.store
    p1 = put(s, "prompt", b"prompt one", "support", "1")
    p2 = put(s, "prompt", b"prompt two", "support", "2")
    p3 = put(s, "prompt", b"prompt three", "support", "3")
    v3 = put(s, "model", b"weights-v3", "chat", "v3")
    v4 = put(s, "model", b"weights-v4", "chat", "v4")
    stranger = "sha256:" + "a" * 64  # never registered: MW101's business
    scored(s, p1, v3, T0 - HOUR)
    scored(s, p2, v4, T0 - HOUR)  # p2 was scored, but with another model
    scored(s, p1, v4, T0 - 2 * HOUR, status="failed")  # a failed run scores nothing
    scored(s, p3, v3, T0 - HOUR, kind="safety")  # nor does a safety comparison
    plan = [(p1, v3, 3), (p2, v3, 2), (p2, None, 4), (p3, None, 1), (stranger, v3, 5)]
    ids, k = {}, 0
    for prompt, model, n in plan:
        decs = [dict(at=T0 + (k + i) * MIN, prompt_digest=prompt, model_digest=model)
                for i in range(n)]
        ids[prompt, model] = record(s, decs)
        k += n
    record(s, [dict(at=T0 - 40 * DAY, prompt_digest=p3, model_digest=v4)])  # outside
    with s.read() as conn:
        cov = coverage(conn, since=NOW - 30 * DAY)
    got = {(p.prompt, p.model): (p.decisions, p.status) for p in cov.pairs}
    assert got == {(p1, v3): (3, "scored"), (p2, v3): (2, "unscored"),
                   (p2, None): (4, "scored"),  # no model named: any run of the prompt
                   (p3, None): (1, "unscored"), (stranger, v3): (5, "not judged")}
    assert [p.decisions for p in cov.pairs] == [5, 4, 3, 2, 1]  # most used first
    by_pair = {(p.prompt, p.model): p for p in cov.pairs}
    assert by_pair[p1, v3].scored_at == T0 - HOUR and by_pair[p2, v3].scored_at is None
    assert by_pair[p2, v3].first_decision == ids[p2, v3][0]
    assert by_pair[p1, v3].first_decision is None  # named for unscored pairs only
    assert cov.scored_share == (3 + 4) / 15
    found = run_guard(s, ledger.settings, "MW301", now=NOW)
    assert sorted((f.evidence["prompt_digest"], f.evidence["model_digest"] or "",
                   f.evidence["first_decision"]) for f in found) == sorted(
        (p.prompt, p.model or "", p.first_decision) for p in cov.unscored)
    with s.read() as conn:
        assert coverage(conn, since=T0 + 10 * MIN).unscored == []  # the window narrows it
