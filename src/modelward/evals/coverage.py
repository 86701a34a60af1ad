"""Eval coverage: which (prompt, model) digest pairs production used, and which of them a
completed task eval run scored.

A pair is **scored** when a completed task run scored exactly that prompt with exactly
that model; a pair of decisions that named no model is scored by any completed task run
of the prompt. A pair whose prompt is not a registered artifact is **not judged** (MW101
reports it); every other pair is **unscored**. The same function backs MW301 and the
dashboard's coverage page, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ledger import artifacts as ledger_artifacts
from ..ledger import evals as ledger_evals
from ..ledger import usage as ledger_usage
from ..timefmt import iso

STATUSES = ("scored", "unscored", "not judged")


@dataclass
class Pair:
    """One (prompt, model) pair production used since the window's start."""

    prompt: str
    model: str | None
    decisions: int
    first: int
    last: int
    status: str  # one of STATUSES
    scored_at: int | None = None  # when a run last scored exactly this pair
    first_decision: str | None = None  # the first decision of an unscored pair

    def to_dict(self) -> dict:
        return {"prompt_digest": self.prompt, "model_digest": self.model,
                "decisions": self.decisions, "first_seen": iso(self.first),
                "last_seen": iso(self.last), "status": self.status,
                "scored_at": iso(self.scored_at), "first_decision": self.first_decision}


@dataclass
class Coverage:
    since: int | None
    pairs: list[Pair]  # most used first
    scored: dict[tuple[str | None, str | None], int]  # what runs scored -> last finished

    @property
    def unscored(self) -> list[Pair]:
        return [p for p in self.pairs if p.status == "unscored"]

    @property
    def scored_share(self) -> float:
        """The share of the window's decisions that ran on a scored pair."""
        total = sum(p.decisions for p in self.pairs)
        return sum(p.decisions for p in self.pairs if p.status == "scored") / max(total, 1)

    def to_dict(self) -> dict:
        return {"since": iso(self.since), "pairs": [p.to_dict() for p in self.pairs],
                "scored": [{"prompt_digest": p, "model_digest": m, "finished_at": iso(t)}
                           for (p, m), t in sorted(self.scored.items(),
                                                   key=lambda kv: -(kv[1] or 0))]}


def coverage(conn, *, since: int | None, rollups: bool = False) -> Coverage:
    """The pairs the decisions since ``since`` used, each judged scored, unscored or not
    judged; ``conn`` is a connection or a guard view (SELECTs only); ``rollups``: counted
    from the per-block rollups."""
    used = ledger_usage.prompt_model_usage(conn, since=since, rollups=rollups)
    scored = ledger_evals.scored_pairs(conn)
    prompts = {p for p, _m in scored if p is not None}
    known = ledger_artifacts.known_digests(conn, {u[0] for u in used})
    pairs = []
    for prompt, model, n, first, last in used:
        if prompt not in known:
            status = "not judged"
        elif (prompt, model) in scored if model is not None else prompt in prompts:
            status = "scored"
        else:
            status = "unscored"
        pair = Pair(prompt, model, n, first, last, status, scored.get((prompt, model)))
        if status == "unscored":
            pair.first_decision = ledger_usage.first_id_at(conn, first, prompt_digest=prompt,
                                                           model_digest=model)
        pairs.append(pair)
    return Coverage(since, pairs, scored)
