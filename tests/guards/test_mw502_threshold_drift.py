"""MW502 threshold-drift: a gate pinned at 0.4 across an embedder upgrade, and a policy
recalibrated on the new embedder."""

from __future__ import annotations

import itertools
import random

from modelward.retrieval import calibration

from .builders import HOUR, MIN, T0, put, record


def gate_decisions(alias, embedder, start, n, threshold, passed_cycle, candidates=20):
    cycle = itertools.cycle(passed_cycle)
    return [dict(at=start + i * MIN, alias=alias, embedder_digest=embedder, process="rag-1",
                 gate={"threshold": threshold, "candidates": candidates,
                       "passed": next(cycle)}) for i in range(n)]


def reference(tmp_path, name, seed, shift):
    rng = random.Random(seed)
    path = tmp_path / name
    path.write_text("".join(f'{{"query": "q{i // 20}", "score": '
                            f'{rng.betavariate(2, 3) + shift:.6f}}}\n' for i in range(2000)))
    return path


def embedders(store):
    return (put(store, "embedder", b"e5-v1", "e5", "1", at=T0 - HOUR),
            put(store, "embedder", b"e5-v2", "e5", "2", at=T0 - HOUR))


def test_MW502_fires_when_a_pinned_gate_drops_37_percent_more_after_an_upgrade(
        ledger, fleet, findings, tmp_path):
    store = ledger.store
    e1, e2 = embedders(store)
    policy = calibration.calibrate(store, "rag/support-gate", reference(tmp_path, "r.jsonl", 1,
                                                                        0.0),
                                   mode="pass_rate", target=0.35, embedder=e1, at=T0).policy
    cut = policy.cut
    # 35% pass on e5-v1; the same cut passes 22% on e5-v2 (37% fewer)
    record(store, gate_decisions("rag/support", e1, T0 + HOUR, 100, cut, [7])
           + gate_decisions("rag/support", e2, T0 + 4 * HOUR, 100, cut, [4, 5, 4, 5, 4]))
    shift, stale = sorted(findings("MW502"), key=lambda f: f.evidence["kind"])
    assert (shift.subject, shift.severity, shift.evidence["kind"]) == (
        "rag/support", "warning", "pass-rate-shift")
    ev = shift.evidence
    assert (ev["pass_rate_before"], ev["pass_rate_after"]) == (0.35, 0.22)
    assert (ev["candidates_before"], ev["candidates_after"], ev["changed"]) == (
        2000, 2000, ["embedder_digest"])
    assert ev["before"] == {"embedder_digest": e1, "reranker_digest": None}
    assert ev["after"] == {"embedder_digest": e2, "reranker_digest": None}
    assert ev["t"] < -8 and ev["df"] == 99 and ev["p_value"] < 1e-15
    assert (ev["decisions_before"], ev["decisions_after"]) == (100, 100)
    assert shift.message == (
        f"rag/support's pass rate went from 35.0% to 22.0% (-37% relative; t = {ev['t']:.3g} "
        f"on 99 df, p = {ev['p_value']:.2g}; 100 and 100 queries) when embedder_digest "
        "changed at 2026-03-01T16:00:00Z")
    assert stale.evidence == {
        "gate": "rag/support", "kind": "stale-cut", "policy": "rag/support-gate", "version": 1,
        "cut": cut, "decision_id": stale.evidence["decision_id"],
        "decision_at": "2026-03-01T17:39:00Z", "latest_version": 1,
        "stale": [{"kind": "embedder", "calibrated_on": e1, "decisions_name": e2}]}
    assert stale.message == (
        f"rag/support uses cut {cut:.6g} of policy rag/support-gate v1, calibrated on embedder "
        f"{e1[:19]}…; its latest decision (2026-03-01T17:39:00Z) names embedder {e2[:19]}…")


def test_MW502_stays_quiet_below_the_minimum_effect_or_count(ledger, fleet, findings):
    store = ledger.store
    e1, e2 = embedders(store)
    # 35% -> 33%: significant with enough candidates, but below min_effect 0.05
    record(store, gate_decisions("rag/a", e1, T0 + HOUR, 500, 0.4, [7])
           + gate_decisions("rag/a", e2, T0 + 10 * HOUR, 500, 0.4, [7, 6, 7, 6, 7, 7, 6, 7, 7,
                                                                    6]))
    # 35% -> 10% on 5 decisions each side: under min_candidates and min_queries
    record(store, gate_decisions("rag/b", e1, T0 + HOUR, 5, 0.4, [7])
           + gate_decisions("rag/b", e2, T0 + 2 * HOUR, 5, 0.4, [2]))
    assert findings("MW502") == []
    assert findings("MW502", min_candidates=50) == []
    [f] = findings("MW502", min_candidates=50, min_queries=5)
    assert f.subject == "rag/b" and (f.evidence["t"], f.evidence["p_value"]) == (None, 0.0)
    assert "(-71% relative; every query passed the same share on each side, p = 0; 5 and 5 " \
           "queries)" in f.message
    # 35% -> 33% over 500 queries a side that barely vary: below min_effect 0.05 only
    [f] = findings("MW502", min_effect=0.01)
    assert f.subject == "rag/a" and f.evidence["p_value"] < 1e-6


def test_MW502_judges_the_query_not_the_candidate(ledger, fleet, findings):
    """40% -> 30% over 30 queries a side whose pass shares swing from none to all: the
    pooled-candidate z-test would call it (z = 3.6, p = 0.0003); the queries do not."""
    store = ledger.store
    e1, e2 = embedders(store)
    record(store, gate_decisions("rag/c", e1, T0 + HOUR, 30, 0.4, [0, 20, 2, 14, 7, 5])
           + gate_decisions("rag/c", e2, T0 + 2 * HOUR, 30, 0.4, [0, 20, 1, 3, 7, 5]))
    assert findings("MW502") == []
    [f] = findings("MW502", alpha=0.5)  # the figures behind the quiet verdict
    ev = f.evidence
    assert (ev["pass_rate_before"], ev["pass_rate_after"]) == (0.4, 0.3)
    assert (ev["decisions_before"], ev["decisions_after"], ev["df"]) == (30, 30, 29)
    assert -1.5 < ev["t"] < -0.5 and 0.2 < ev["p_value"] < 0.4


def test_MW502_clean_when_the_policy_was_recalibrated_and_the_pass_rate_holds(
        ledger, fleet, findings, tmp_path):
    store = ledger.store
    e1, e2 = embedders(store)
    v1 = calibration.calibrate(store, "rag/support-gate", reference(tmp_path, "r1.jsonl", 1, 0),
                               mode="pass_rate", target=0.35, embedder=e1, at=T0).policy
    v2 = calibration.recalibrate(store, "rag/support-gate",
                                 reference(tmp_path, "r2.jsonl", 2, -0.12), embedder=e2,
                                 at=T0 + 3 * HOUR).policy
    assert v2.cut < v1.cut
    record(store, gate_decisions("rag/support", e1, T0 + HOUR, 100, v1.cut, [7])
           + gate_decisions("rag/support", e2, T0 + 4 * HOUR, 100, v2.cut, [7, 6, 8, 7]))
    assert findings("MW502") == []
    # serving the old cut on the new embedder is a stale cut even if traffic looks fine
    record(store, gate_decisions("rag/support", e2, T0 + 8 * HOUR, 1, v1.cut, [7]))
    [f] = findings("MW502")
    assert (f.evidence["kind"], f.evidence["version"], f.evidence["latest_version"]) == (
        "stale-cut", 1, 2)
    assert f.message.endswith(f"(the policy is at v2, cut {v2.cut:.6g})")
