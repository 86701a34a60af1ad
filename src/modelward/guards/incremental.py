"""What a long-running guard process (``modelward watch``, ``serve --watch``) keeps between
runs, and which guards a change concerns.

:class:`Incremental` is the state the watch loop hands each run: the window's rollups in
memory (:class:`modelward.ledger.rollup_window.WindowRollups`: a run reads the rollups of
the blocks sealed since the last run and of the bucket the window's start cuts, never the
whole window), the chain block and root this process verified last (MW103 then verifies
only the blocks after it), and the newest block it has looked at.

:data:`READS` names, for each guard, what it reads: ``decisions`` (decision blocks) and the
chained record kinds (``ledger.records.RECORD_KINDS``: a block of records holds leaves of
those kinds). :func:`concerned` picks the guards a set of new blocks concerns; the watch
runs only those on a trigger and every guard on its scheduled backstop. A guard that did
not run leaves its findings as they were (only a run of its guard resolves a finding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ledger.rollup_window import Windows
from . import registry

_ART = frozenset({"artifacts", "artifact_parents", "alias_events", "holds"})
_PROMO = frozenset({"promotion_requests", "promotion_reviews"})
_EVAL = frozenset({"eval_runs", "eval_results", "eval_opens", "evalset_deprecations"})
_PEOPLE = frozenset({"people", "alias_roles"})
_EXP = frozenset({"experiments", "exposures"})
DECISIONS = "decisions"
ANY = "*"  # MW103: any new block

READS: dict[str, frozenset[str]] = {
    "MW101": frozenset({DECISIONS}) | _ART,
    "MW102": frozenset({DECISIONS, "retired_blocks"}) | _ART,
    "MW103": frozenset({ANY}),
    "MW104": frozenset({DECISIONS}) | _ART | _PROMO,
    "MW105": frozenset({DECISIONS}) | _ART,
    "MW201": _PEOPLE | _ART,
    "MW202": _EVAL | _ART | _PROMO,
    "MW203": _PROMO | _EVAL | _PEOPLE | _ART,
    "MW204": frozenset({"closures"}) | _ART,
    "MW205": _EVAL | _ART,
    "MW206": _PROMO | _PEOPLE | _ART,
    "MW301": frozenset({DECISIONS}) | _EVAL | _ART,
    "MW302": _EVAL | _ART,
    # MW303 reads the window's traffic mix too, but a block moves it by a fraction of a
    # percent: eval writes and the backstop run it, decision blocks do not (they would
    # re-read the window's decisions on every trigger)
    "MW303": _EVAL | _ART,
    "MW304": frozenset({"feedback", "dataset_feedback"}) | _ART,
    "MW401": _EXP | _ART,
    "MW402": _EXP | _ART,
    "MW403": _EXP | _ART,
    "MW404": _EXP | _ART | frozenset({"fingerprints"}),
    "MW405": _EXP | _ART,
    "MW501": frozenset({"fingerprints"}) | _ART | _PROMO,
    "MW502": frozenset({DECISIONS, "threshold_policies", "fingerprints"}) | _ART,
}
# kinds no guard reads: their blocks trigger MW103 only
QUIET = frozenset({"finding_acks", "erasures"})


def concerned(changed: set[str]) -> set[str]:
    """The active guard codes a change of ``changed`` (``decisions`` and record kinds)
    concerns. A kind no guard is known to read and that is not :data:`QUIET` concerns
    every guard (a new table is checked rather than missed); meta guards always run."""
    known = set().union(*READS.values()) | QUIET
    every = bool(changed - known - {ANY})
    out = set()
    for c in registry.CODES:
        if c.status != "active":
            continue
        reads = READS.get(c.code)
        if c.meta or every or reads is None or (changed and ANY in reads) or (reads & changed):
            out.add(c.code)
    return out


@dataclass
class Incremental:
    """One watch process's state between guard runs (memory only)."""

    window: Windows = field(default_factory=Windows)
    verified: object = None  # ledger.checkpoints.Verified: MW103 starts after its block
    head: int | None = None  # the newest block the process has looked at

    def saw(self, changed: set[str]) -> None:
        """What new blocks held: a retention run that retired decision blocks rewrote their
        rollups (``rollups.refresh``), so the in-memory windows start afresh."""
        if "retired_blocks" in changed:
            self.window = Windows(bucket=self.window.bucket)

    def reset(self) -> None:
        """Forget everything: the next run reads the window and verifies as configured."""
        self.window = Windows(bucket=self.window.bucket)
        self.verified = None
