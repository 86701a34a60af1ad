"""A retrieval gate's pass rate moved with its substrate, or its cut outlived the substrate.

What it checks
--------------
Decisions carry retrieval-gate figures (``gate.threshold``, ``gate.candidates``,
``gate.passed``). A gate is the alias the decisions asked for. Two checks:

1. **Pass-rate shift.** Each gate's decisions are aggregated by substrate (embedder digest,
   reranker digest), and the substrates put in order of first use. For each substrate
   change, the pass rate (passed / candidates) before is compared with the one after. It
   fires when both sides hold at least ``min_queries`` decisions and ``min_candidates``
   candidates, the absolute difference is at least ``min_effect`` and the query-level
   test's p-value is below ``alpha``.
2. **Stale cut.** A gate's latest decision uses an absolute ``gate_threshold`` equal to the
   cut of a threshold policy version (``modelward threshold calibrate``) that was calibrated
   on another embedder or reranker digest than the one the decision names.

**How it decides.** The unit is the query (one decision), not the candidate: candidates
of one query pass or fail together, so a test that counts them as independent trials
fired on 18-20% of unchanged windows at a nominal 0.1%. Each side's pass rate is the
ratio Σpassed / Σcandidates over its queries; the spread of the queries around it
(Σ(passed - rate·candidates)², pooled over both sides, since the null is "nothing
changed") gives the standard error of the difference, judged by Student's t on half of
(queries before + queries after - 2) degrees of freedom: halved because per-query pass
fractions are skewed and discrete, which made the full degrees of freedom 1.0-1.4x
``alpha`` with 10-20 queries a side; with many queries it makes no difference. With the
same number of candidates per query this is the two-sample t-test of the per-query pass
fractions. ``alpha`` is the false-alarm rate per substrate
change on an unchanged gate: simulated (``python bench/calibration.py --guard MW502``)
with 20 candidates per query, per-query pass rates Beta-distributed (mean 0.35, sd
0.25) and 10 to 100 queries a side, it fires on fewer than ``alpha`` of unchanged
windows (figures in docs/thresholds.md).

**How it reads.** The sums a side needs (queries, Σpassed, Σcandidates, Σpassed²,
Σpassed·candidates, Σcandidates², all integers) are kept per chain block in the ledger's
rollups, written in the transaction that seals the block and recomputed by ``verify``.
A check adds up a few rollup rows per block instead of reading every decision: only the
blocks the window's ends (``--since``, the check's moment) cut through, or without
rollups, are summed from their decisions. The stale cut ranks only the decisions of the
blocks holding each gate's latest threshold. ``check_rollups = false`` reads every
decision: the same integers, so the same findings, to the last digit of t and p. In
``modelward watch`` (and ``serve --watch``) the sums and each gate's latest threshold are
kept in memory per hour, so a trigger adds only the new blocks' rollups.

**Known limits.** Queries are noisy units: a drop from 35% to 25% pass rate is found in
about a quarter of windows with 100 queries a side and in nine of ten with 300; sides
under ``min_queries`` are not judged. A
change in the query mix at the same time as the substrate change (a new product surface
sending harder queries) is a real shift in pass rate and is reported as one; the test
cannot tell why the rate moved.

Why it matters
--------------
A RAG gate pinned at reranker score 0.4 was tuned on one embedder. After an embedder
upgrade the score distribution shifted; 0.4 now drops 37% more candidates and answers got
worse, while every dashboard still said "threshold 0.4". A cut means something only on
the substrate it was measured on.

Example
-------
``rag/support`` passed 35% of its candidates on embedder e5-v1 and 22% after the move to
e5-v2, at the same cut 0.4 calibrated on e5-v1::

    MW502 threshold-drift  rag/support
      rag/support's pass rate went from 35.0% to 22.0% (-37% relative; t = -18.4 on
      2,499 df, p = 5.2e-71; 2,400 and 2,600 queries) when embedder_digest changed at
      2026-03-02T12:00:00Z
    MW502 threshold-drift  rag/support
      rag/support uses cut 0.4 of policy rag/support-gate v1, calibrated on embedder
      sha256:6c1f…; its latest decision (2026-03-03T11:50:00Z) names embedder sha256:9e02…

How to fix
----------
Recalibrate the policy on reference scores from the new substrate
(``modelward threshold recalibrate NAME --scores FILE``), which keeps the pass rate and
moves the cut, and serve the new cut (``ledger.threshold_policy(NAME).cut(scores)`` reads
the latest version).

Configuration
-------------
In ``[check.MW502]``::

    [check.MW502]
    min_candidates = 200   # candidates on each side of a change before it is judged
    min_queries = 10       # queries (decisions) on each side before it is judged
    min_effect = 0.05      # smallest absolute pass-rate difference that counts
    alpha = 0.001          # false-alarm rate of the query-level test

``min_candidates``, ``min_queries``, ``min_effect`` and ``alpha`` as above; ``severity`` overrides the
default severity (warning), as for every guard.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ..display import short_digest
from ..ledger import thresholds as ledger_thresholds
from ..ledger import usage as ledger_usage
from ..retrieval.drift import GateSide, pass_rate_shift
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW502"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("min_candidates", "int", 200,
            "Candidates needed on each side of a substrate change.", minimum=1),
    Setting("min_queries", "int", 10,
            "Queries (decisions) needed on each side of a substrate change.", minimum=2),
    Setting("min_effect", "float", 0.05, "Smallest absolute pass-rate difference that counts."),
    Setting("alpha", "float", 0.001,
            "False-alarm rate of the query-level test on an unchanged gate."),
)
FIX = ("recalibrate the policy on the new substrate (`modelward threshold recalibrate`) and "
       "serve its cut (`ledger.threshold_policy(NAME).cut(scores)`)")
SUBSTRATE = ("embedder_digest", "reranker_digest")


def _side(row) -> GateSide:
    return GateSide(int(row.n), int(row.passed), int(row.candidates), float(row.sum_xx or 0),
                    float(row.sum_xn or 0), float(row.sum_nn or 0))


def _shifts(view, config) -> Iterator[Finding]:
    rows = ledger_usage.gate_substrates(view, since=view.since, until=view.now,
                                        rollups=view.rollups)
    by_gate: dict[str, list] = {}
    # substrates in order of first use (ties by digest: the same order on every path)
    for r in sorted(rows, key=lambda r: (r.gate, r.first_at, r.embedder_digest or "",
                                         r.reranker_digest or "")):
        by_gate.setdefault(r.gate, []).append(r)
    for name, subs in by_gate.items():
        for before, after in zip(subs, subs[1:], strict=False):
            b, a = _side(before), _side(after)
            shift = pass_rate_shift(b, a, alpha=config["alpha"], min_effect=config["min_effect"],
                                    min_candidates=config["min_candidates"],
                                    min_queries=config["min_queries"])
            if shift is None or not shift.fires:
                continue
            r1, r2 = shift.before, shift.after
            changed = [c for c in SUBSTRATE if getattr(before, c) != getattr(after, c)]
            relative = f"{(r2 - r1) / r1:+.0%} relative; " if r1 > 0 else ""
            test = ("every query passed the same share on each side" if shift.t is None
                    else f"t = {shift.t:.3g} on {shift.df:,.0f} df")
            subject = name or "(no alias)"
            yield Finding(
                CODE, SEVERITY, subject,
                f"{subject}'s pass rate went from {r1:.1%} to {r2:.1%} ({relative}"
                f"{test}, p = {shift.p_value:.2g}; {b.queries:,} and {a.queries:,} queries) "
                f"when {' and '.join(changed)} changed at {iso(after.first_at)}",
                evidence={"gate": subject, "kind": "pass-rate-shift", "changed": changed,
                          "before": {c: getattr(before, c) for c in SUBSTRATE},
                          "after": {c: getattr(after, c) for c in SUBSTRATE},
                          "changed_at": iso(after.first_at),
                          "pass_rate_before": r1, "pass_rate_after": r2,
                          "candidates_before": b.candidates, "candidates_after": a.candidates,
                          "decisions_before": b.queries, "decisions_after": a.queries,
                          "t": shift.t, "df": shift.df, "p_value": shift.p_value},
                fix=FIX, identity=("gate", "kind", "before", "after"))


def _stale_cuts(view) -> Iterator[Finding]:
    versions = [v for v in ledger_thresholds.all_versions(view) if v.at <= view.now]
    if not versions:
        return
    newest = {v.name: v for v in versions}
    for row in ledger_usage.latest_gate_cuts(view, since=view.since, until=view.now,
                                             rollups=view.rollups):
        matching: dict[str, object] = {}
        for v in versions:  # by name then version: the newest matching version wins
            if math.isclose(v.cut, row.gate_threshold, rel_tol=1e-9, abs_tol=1e-12):
                matching[v.name] = v
        for v in matching.values():
            stale = []
            for kind in ("embedder", "reranker"):
                calibrated = (v.substrate.get(kind) or {}).get("digest")
                used = getattr(row, f"{kind}_digest")
                if calibrated and used and calibrated != used:
                    stale.append((kind, calibrated, used))
            if not stale:
                continue
            subject = row.gate or "(no alias)"
            on = "; ".join(f"{k} {short_digest(c)}" for k, c, _ in stale)
            now = "; ".join(f"{k} {short_digest(u)}" for k, _, u in stale)
            latest = newest[v.name]
            note = (f" (the policy is at v{latest.version}, cut {latest.cut:.6g})"
                    if latest.version != v.version else "")
            yield Finding(
                CODE, SEVERITY, subject,
                f"{subject} uses cut {row.gate_threshold:.6g} of policy {v.name} v{v.version}, "
                f"calibrated on {on}; its latest decision ({iso(row.at)}) names {now}{note}",
                evidence={"gate": subject, "kind": "stale-cut", "policy": v.name,
                          "version": v.version, "cut": v.cut, "decision_id": row.id,
                          "decision_at": iso(row.at), "latest_version": latest.version,
                          "stale": [{"kind": k, "calibrated_on": c, "decisions_name": u}
                                    for k, c, u in stale]},
                fix=FIX, identity=("gate", "kind", "policy", "version"))


def check(view, config) -> Iterator[Finding]:
    yield from _shifts(view, config)
    yield from _stale_cuts(view)
