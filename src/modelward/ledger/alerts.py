"""Alert deliveries: every read and write of ``alert_deliveries``, and the findings a guard
run opened or resolved (what the alerts announce).

A run's transitions are enqueued once per routed channel (a unique key makes a second
enqueue of the same run a no-op), then delivered from the queue: a failed attempt is
retried after a backoff until ``max_attempts``, then marked failed. The payload is built
when the run ends and stored, so a retry sends the same message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..ids import uuid7
from .schema import alert_deliveries, check_findings, findings

STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class Transition:
    """A finding a run opened or resolved, with what that run (or, for a resolution, the
    last run that showed it) said about it."""
    state: str  # opened | resolved
    run_id: str
    key: str
    code: str
    severity: str
    subject: str
    message: str | None
    fix: str | None
    evidence: dict
    opened_at: int
    resolved_at: int | None


@dataclass(frozen=True)
class Delivery:
    id: str
    channel: str
    finding_key: str
    transition: str
    run_id: str
    code: str
    severity: str
    created_at: int
    status: str
    attempts: int
    next_attempt_at: int
    delivered_at: int | None
    last_error: str | None
    payload: dict

    def to_dict(self) -> dict:
        from ..timefmt import iso

        return {"id": self.id, "channel": self.channel, "finding": self.finding_key,
                "transition": self.transition, "run": self.run_id, "code": self.code,
                "severity": self.severity, "created_at": iso(self.created_at),
                "status": self.status, "attempts": self.attempts,
                "next_attempt_at": iso(self.next_attempt_at),
                "delivered_at": iso(self.delivered_at), "last_error": self.last_error}


def transitions(conn: Connection, run_id: str) -> list[Transition]:
    """The findings ``run_id`` opened, then those it resolved."""
    f, cf = findings.c, check_findings.c
    out = []
    for state, which, shown_by in (("opened", f.opened_run, f.opened_run),
                                   ("resolved", f.resolved_run, f.last_run)):
        query = (sa.select(f.key, f.code, f.severity, f.subject, f.opened_at, f.resolved_at,
                           cf.message, cf.fix, cf.evidence)
                 .select_from(findings.outerjoin(check_findings, sa.and_(
                     cf.run_id == shown_by, cf.key == f.key)))
                 .where(which == run_id).order_by(f.code, f.key))
        for row in conn.execute(query):
            out.append(Transition(state, run_id, row.key, row.code, row.severity, row.subject,
                                  row.message, row.fix,
                                  json.loads(row.evidence) if row.evidence else {},
                                  row.opened_at, row.resolved_at))
    return out


def open_transitions(conn: Connection) -> list[Transition]:
    """Every open finding as an "opened" transition, with what its latest run said."""
    f, cf = findings.c, check_findings.c
    query = (sa.select(f.key, f.code, f.severity, f.subject, f.opened_at, f.last_run,
                       cf.message, cf.fix, cf.evidence)
             .select_from(findings.outerjoin(check_findings, sa.and_(
                 cf.run_id == f.last_run, cf.key == f.key)))
             .where(f.resolved_at.is_(None)).order_by(f.code, f.key))
    return [Transition("opened", row.last_run, row.key, row.code, row.severity, row.subject,
                       row.message, row.fix, json.loads(row.evidence) if row.evidence else {},
                       row.opened_at, None) for row in conn.execute(query)]


def enqueue(conn: Connection, rows: Iterable[dict], *, now: int) -> int:
    """Queue deliveries (dicts: channel, finding_key, transition, run_id, code, severity,
    payload); ones already queued are skipped. Returns how many were queued."""
    d = alert_deliveries.c
    added = 0
    for row in rows:
        exists = conn.execute(sa.select(d.id).where(
            d.channel == row["channel"], d.finding_key == row["finding_key"],
            d.transition == row["transition"], d.run_id == row["run_id"])).first()
        if exists:
            continue
        conn.execute(alert_deliveries.insert().values(
            id=uuid7(), created_at=now, status="pending", attempts=0, next_attempt_at=now,
            **{**row, "payload": json.dumps(row["payload"], sort_keys=True)}))
        added += 1
    return added


def _delivery(row) -> Delivery:
    return Delivery(row.id, row.channel, row.finding_key, row.transition, row.run_id, row.code,
                    row.severity, row.created_at, row.status, row.attempts,
                    row.next_attempt_at, row.delivered_at, row.last_error,
                    json.loads(row.payload))


def due(conn: Connection, now: int, limit: int = 500) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, oldest first."""
    d = alert_deliveries.c
    return [_delivery(r) for r in conn.execute(
        sa.select(alert_deliveries).where(d.status == "pending", d.next_attempt_at <= now)
        .order_by(d.created_at, d.id).limit(limit))]


def mark(conn: Connection, delivery_id: str, *, status: str, attempts: int,
         next_attempt_at: int, delivered_at: int | None = None,
         error: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(status)
    conn.execute(alert_deliveries.update().where(alert_deliveries.c.id == delivery_id).values(
        status=status, attempts=attempts, next_attempt_at=next_attempt_at,
        delivered_at=delivered_at, last_error=None if error is None else error[:2000]))


def recent(conn: Connection, *, limit: int = 50, status: str | None = None) -> list[Delivery]:
    d = alert_deliveries.c
    query = sa.select(alert_deliveries).order_by(d.created_at.desc(), d.id.desc()).limit(limit)
    if status is not None:
        query = query.where(d.status == status)
    return [_delivery(r) for r in conn.execute(query)]


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    """(channel, status) -> deliveries."""
    d = alert_deliveries.c
    return {(c, s): n for c, s, n in conn.execute(
        sa.select(d.channel, d.status, sa.func.count()).group_by(d.channel, d.status))}
