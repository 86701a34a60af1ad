"""The demo's world: one clock, seeded randomness, the ledger being built, and the plan the
episodes edit before any decision is written (alias moves, fleet lags, vendor reports).

Everything is relative to ``now`` (floored to the minute), so the story always ends today;
everything else — artifact bytes and digests, traffic, texts, lags — comes from the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelward.ledger.engine import Store

SEED = 20240607
MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
SPAN_DAYS = 240  # eight months of traffic, ending now

CHAT_ALIAS = "chat/v1"
PROMPT_ALIAS = "prompt/support@production"
SUMMARY_ALIAS = "summary/v1"
TRIAGE_ALIAS = "triage/v1"
# The chat fleet; a decision's ``process`` is "<pod>:<pid>" and containers run as pid 1.
CHAT_PODS = ("pod-chat-7f9c:1", "pod-chat-2b4e:1", "pod-chat-a81d:1", "pod-chat-c3f0:1",
             "pod-chat-5e67:1", "pod-chat-d92a:1")
SUMMARY_WORKERS = ("worker-summarize-5d2e:1", "worker-summarize-90ab:1")
TRIAGE_PODS = ("pod-triage-41c8:1", "pod-triage-e7d3:1")
# How long a healthy pod takes to pick up an alias move (it polls resolve()); always well
# inside modelward's 30-minute MW105 grace.
LAG_MIN_US = 1 * MINUTE
LAG_MAX_US = 20 * MINUTE


@dataclass(frozen=True)
class AliasMove:
    """One planned alias event; ``label`` lets episodes refer to it (e.g. "chat/v1:chat-v1.2")."""

    alias: str
    digest: str
    at: int
    reason: str
    actor: str
    label: str
    # moved around its promotion by a recorded break-glass (written once the reviewers of
    # record exist, through registry.protection, rather than with the planned moves)
    break_glass: bool = False


@dataclass(frozen=True)
class VendorReport:
    """From ``since`` on, the vendor reports this model id and fingerprint for a hosted model."""

    since: int
    model_id: str
    fingerprint: str | None


@dataclass(frozen=True)
class Expected:
    """A finding an episode plants: the guard code, the subject it must name, and the
    evidence values that tell it apart from another finding on the same subject."""

    code: str
    subject: str
    episode: str
    evidence: tuple[tuple[str, object], ...] = ()

    def matches(self, finding: dict) -> bool:
        given = finding.get("evidence") or {}
        return (finding["code"] == self.code and finding["subject"] == self.subject
                and all(given.get(k) == v for k, v in self.evidence))

    def resolved(self, digests: dict[str, str]) -> Expected:
        """Fill in ``{name}`` fields (``{name:.19}`` for a short digest) of the subject and
        of text evidence with ``digests[name]``: an artifact an after-write hook registers
        has a digest known only once the hook ran."""
        def fill(value):
            return value.format_map(digests) if isinstance(value, str) and "{" in value \
                else value
        return Expected(self.code, fill(self.subject), self.episode,
                        tuple((k, fill(v)) for k, v in self.evidence))

    def describe(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.evidence)
        return f"{self.code} {self.subject}{extra}"


@dataclass
class World:
    store: Store
    now: int
    staging: Path
    seed: int = SEED
    digests: dict[str, str] = field(default_factory=dict)      # short name -> sha256 digest
    moves: list[AliasMove] = field(default_factory=list)
    lag_overrides: dict[tuple[str, str], int] = field(default_factory=dict)
    vendor_reports: dict[str, list[VendorReport]] = field(default_factory=dict)
    after_write: list[Callable[[World], None]] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)  # what hooks share (feedback, …)

    @property
    def start(self) -> int:
        return self.now - SPAN_DAYS * DAY

    def rng(self, *names: object) -> random.Random:
        """An independent random stream per purpose, so adding an episode or a stream never
        shifts the numbers another one draws."""
        return random.Random(":".join([str(self.seed), *map(str, names)]))

    def day(self, days_ago: int, clock: str = "00:00") -> int:
        """Microseconds at ``clock`` (HH:MM, UTC) on the day ``days_ago`` days before now."""
        midnight = (self.now - days_ago * DAY) // DAY * DAY
        hours, minutes = (int(x) for x in clock.split(":"))
        return midnight + hours * HOUR + minutes * MINUTE

    def workday(self, days_ago: int, clock: str = "00:00") -> int:
        """Like :meth:`day`, moved back to the Friday before when it falls on a weekend:
        Acme ships on working days, when the fleet is busy enough to show what happened."""
        at = self.day(days_ago, clock)
        weekday = (at // DAY + 3) % 7  # Monday = 0; 1970-01-01 was a Thursday
        return at - (weekday - 4) * DAY if weekday >= 5 else at

    def move(self, alias: str, name: str, at: int, reason: str, actor: str,
             label: str | None = None, *, break_glass: bool = False) -> AliasMove:
        """Plan an alias move to the artifact registered under short ``name``."""
        mv = AliasMove(alias, self.digests[name], at, reason, actor, label or f"{alias}:{name}",
                       break_glass)
        if at >= self.now:
            raise ValueError(f"alias move {mv.label} is not in the past")
        self.moves.append(mv)
        return mv

    def move_labelled(self, label: str) -> AliasMove:
        for mv in self.moves:
            if mv.label == label:
                return mv
        raise KeyError(f"no planned alias move labelled {label!r}")

    def moves_of(self, alias: str) -> list[AliasMove]:
        return sorted((m for m in self.moves if m.alias == alias), key=lambda m: m.at)

    def lag(self, process: str, move: AliasMove) -> int:
        """How long ``process`` took to pick up ``move`` (an episode may override it)."""
        override = self.lag_overrides.get((process, move.label))
        if override is not None:
            return override
        return self.rng("lag", process, move.label).randint(LAG_MIN_US, LAG_MAX_US)

    def vendor_report(self, alias: str, at: int) -> VendorReport:
        current = None
        for report in self.vendor_reports[alias]:
            if report.since <= at:
                current = report
        if current is None:
            raise ValueError(f"no vendor report for {alias} at {at}")
        return current


def decision_id(at: int, rng: random.Random) -> str:
    """A UUIDv7 whose timestamp is the decision's own time, as a recorder at ``at`` makes it."""
    value = ((at // 1000) << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) \
        | (0b10 << 62) | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
