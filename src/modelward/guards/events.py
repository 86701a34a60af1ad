"""The findings' events, in order, from a resumable cursor: what
``GET /api/v1/findings/events`` streams.

Events are ``finding.opened`` and ``finding.resolved`` (the transitions of each completed
guard run, at the time the run finished) and ``finding.acknowledged`` (each ack, at the time
it was made). Each has an id ``"<microseconds>-<n>"``: the time of its source and its
position among the events of that same microsecond (sorted by source, then key), so a
client that reconnects with ``Last-Event-ID`` gets every later event once, none twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..ledger import acks as ledger_acks
from ..ledger import alerts as ledger_alerts
from ..ledger import findings as ledger_findings
from ..ledger.engine import Store
from ..timefmt import iso

_ID = re.compile(r"([0-9]{1,18})-([0-9]{1,9})\Z")
MAX_BATCH = 200  # events read per poll; the rest follow on the next


@dataclass(frozen=True)
class Cursor:
    at: int
    n: int = -1  # the last event sent at ``at`` (-1: none yet)

    def __str__(self) -> str:
        return f"{self.at}-{self.n}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        """A ``Last-Event-ID``; None when absent or not one of ours (then: from now)."""
        if not value:
            return None
        m = _ID.match(value)
        return cls(int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    data: dict


def after(store: Store, cursor: Cursor) -> tuple[list[Event], Cursor]:
    """The events after ``cursor`` (at most about MAX_BATCH) and the cursor to poll from next."""
    raw: list[tuple[int, int, str, str, dict]] = []  # (at, source order, key, type, data)
    with store.read() as conn:
        runs = ledger_findings.finished_after(conn, cursor.at, limit=MAX_BATCH)
        for run in runs:
            for t in ledger_alerts.transitions(conn, run.id):
                raw.append((run.finished_at, 0, t.key, f"finding.{t.state}", {
                    "key": t.key, "code": t.code, "severity": t.severity,
                    "subject": t.subject, "message": t.message, "run": run.id,
                    "opened_at": iso(t.opened_at), "resolved_at": iso(t.resolved_at),
                    "at": iso(run.finished_at)}))
        acks = ledger_acks.made_after(conn, cursor.at, limit=MAX_BATCH)
        for ack in acks:
            raw.append((ack.created_at, 1, ack.finding_key, "finding.acknowledged",
                        {**ack.to_dict(), "at": iso(ack.created_at)}))
    raw.sort(key=lambda e: e[:3])
    # a source that filled its batch may have more from its last time on: keep only what
    # lies before that time (every source read it all), the rest comes next time
    full = [x for x, n in ((runs[-1].finished_at if runs else 0, len(runs)),
                           (acks[-1].created_at if acks else 0, len(acks))) if n >= MAX_BATCH]
    if full:
        horizon = min(full)
        earlier = [e for e in raw if e[0] < horizon]
        raw = earlier or [e for e in raw if e[0] <= horizon]
    out, position, at_prev = [], -1, None
    for at, _src, _key, kind, data in raw:
        position = position + 1 if at == at_prev else 0
        at_prev = at
        if at == cursor.at and position <= cursor.n:
            continue  # sent already
        out.append(Event(f"{at}-{position}", kind, data))
    if not out:
        return [], cursor
    last_at, last_n = out[-1].id.split("-")
    return out, Cursor(int(last_at), int(last_n))
