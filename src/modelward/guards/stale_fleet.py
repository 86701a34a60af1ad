"""Processes still serving an alias's previous digest long after the alias moved.

What it checks
--------------
When an alias moves from P to N at time t, every process asking for that alias should be
using N by t + grace. This guard finds decisions that name the alias and still carry P in
the digest field of P's artifact kind (``model_digest`` for a model or adapter alias,
``prompt_digest`` for a prompt alias, …) later than t + grace, while the alias had not
pointed back at P: a rollback to P makes P correct again from the moment of the rollback.
One finding per (alias, process, stale digest), with the number of stale decisions, the
first and last one, and the move they ignored. The alias history is read once; each
alias's decisions in the window are then counted in one ordered pass, from the per-block
rollups (decisions are read only in the blocks where a stale range starts or ends).

Only the alias a decision names (its ``alias`` field, the first of ``uses=`` in the SDK)
is judged.

Why it matters
--------------
The eval worker loaded the prompt template at start-up and kept scoring v37 for eight
hours while production ran v38; a canary "rollout" left half the fleet on the old
checkpoint because those pods cached the resolution. Dashboards keyed by alias show one
model; the outputs came from two.

Example
-------
``chat/v1`` moved from support-chat@v3 to support-chat@v4 at 12:00; ``worker-7`` kept
recording v3 until 15:10::

    MW105 stale-fleet  chat/v1
      worker-7 still named support-chat@v3 (sha256:9f86d081884c…) for chat/v1 in 412
      decisions from 2026-03-01T12:31:00Z to 2026-03-01T15:10:00Z, after chat/v1 moved
      to support-chat@v4 (sha256:60303ae22b99…) at 2026-03-01T12:00:00Z (grace 30m)

How to fix
----------
Resolve the alias per request (or re-resolve on a short timer) instead of once at
start-up: ``ledger.resolve(alias)`` reads the current target every call. Restart or
redeploy the processes named in the findings. If a process pins a digest on purpose, have
it record without the alias, or suppress the finding with a reason and an expiry.

Configuration
-------------
``grace`` in ``[check.MW105]``: how long after a move the previous digest is still
accepted (a duration such as ``30m`` or ``2h``; default: the ``stale_fleet_grace``
setting, itself 30m by default). ``severity`` overrides the default severity (warning),
as for every guard.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from ..display import duration, plural
from ..ledger import usage as ledger_usage
from ..ledger.decisions import KIND_FIELD
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW105"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("grace", "duration", None,
                   "How long after a move the previous digest is accepted "
                   "(default: the stale_fleet_grace setting)."),)

FIX = ("resolve the alias per request (ledger.resolve reads the current target) and restart "
       "the processes named")


@dataclass(frozen=True)
class Stale:
    """After ``moved_at`` the alias stopped pointing at ``digest``; stale in (lo, hi)."""

    alias: str
    digest: str
    field: str
    lo: int
    hi: int | None
    moved_at: int
    moved_to: str


def stale_ranges(events, kinds: dict[str, str], grace: int) -> list[Stale]:
    """From one ordered alias history, the time ranges in which each previous digest is
    stale: from its move-away + grace until the alias points back at it (or forever)."""
    out = []
    for i, ev in enumerate(events):
        prev = ev.previous_digest
        field = KIND_FIELD.get(kinds.get(prev, ""))
        if prev is None or prev == ev.digest or field is None:
            continue
        back = next((e.at for e in events[i + 1:] if e.digest == prev), None)
        lo = ev.at + grace
        if back is None or back > lo:
            out.append(Stale(ev.alias, prev, field, lo, back, ev.at, ev.digest))
    return out


def _count(view, ranges: list[Stale]) -> dict[tuple, list]:
    """(alias, digest, process) -> [count, first, last] of decisions inside the ranges."""
    return ledger_usage.stale_counts(
        view, [ledger_usage.StaleRange(r.alias, r.digest, r.field, r.lo, r.hi) for r in ranges],
        since=view.since, rollups=view.rollups)


def _decision_at(view, alias, field, digest, process, at) -> str | None:
    return ledger_usage.first_id_at(view, at, alias=alias, process=process, **{field: digest})


def check(view, config) -> Iterator[Finding]:
    grace = config["grace"] if config["grace"] is not None else view.settings.stale_fleet_grace
    events = view.alias_events()
    kinds = {d: a.kind for d, a in view.artifacts(e.digest for e in events).items()}
    histories: dict[str, list] = {}
    for ev in events:
        histories.setdefault(ev.alias, []).append(ev)
    ranges = [r for evs in histories.values() for r in stale_ranges(evs, kinds, grace)]
    if not ranges:
        return
    index: dict[tuple, list[Stale]] = {}
    for r in ranges:
        index.setdefault((r.alias, r.digest), []).append(r)  # in time order, disjoint
    grace_text = duration(grace)
    for (alias, digest, process), (n, first, last) in sorted(
            _count(view, ranges).items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        spans = index[(alias, digest)]
        move = spans[max(0, bisect.bisect_left([s.lo for s in spans], first) - 1)]
        who = process or "(no process)"
        yield Finding(
            CODE, SEVERITY, alias,
            f"{who} still named {view.label(digest)} for {alias} in {plural(n, 'decision')} from "
            f"{iso(first)} to {iso(last)}, after {alias} moved to {view.label(move.moved_to)} "
            f"at {iso(move.moved_at)} (grace {grace_text})",
            evidence={"alias": alias, "process": process, "stale_digest": digest,
                      "field": move.field, "moved_to": move.moved_to,
                      "moved_at": iso(move.moved_at), "grace": grace_text, "decisions": n,
                      "first_seen": iso(first), "last_seen": iso(last),
                      "first_decision": _decision_at(view, alias, move.field, digest,
                                                     process, first),
                      "last_decision": _decision_at(view, alias, move.field, digest,
                                                    process, last)},
            fix=FIX, identity=("alias", "process", "stale_digest"))


