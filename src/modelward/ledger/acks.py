"""Finding acknowledgements: every read and write of ``finding_acks`` (chained records).

An ack names a finding (its key, the guard's fingerprint), the person who acknowledged
it, a reason and optionally an expiry (``until``: a snooze). It covers the finding's
*current opening*: it is **active** while it is not revoked, not expired, and the finding
it names is open and was opened at or before the ack was made. When the finding resolves
and later opens again, the old ack no longer covers it. Each write is sealed with
:func:`.records.record` in the same transaction, so who silenced what is tamper-evident;
revoking sets ``revoked_at``/``revoked_by`` and never deletes the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..ids import uuid7
from . import records
from .schema import alert_deliveries, finding_acks, findings


@dataclass(frozen=True)
class Ack:
    id: str
    finding_key: str
    code: str
    actor: str
    reason: str
    created_at: int
    until: int | None
    revoked_at: int | None
    revoked_by: str | None

    def to_dict(self) -> dict:
        from ..timefmt import iso

        return {"id": self.id, "key": self.finding_key, "code": self.code,
                "actor": self.actor, "reason": self.reason,
                "created_at": iso(self.created_at), "until": iso(self.until),
                "revoked_at": iso(self.revoked_at), "revoked_by": self.revoked_by}


def _ack(row) -> Ack:
    return Ack(row.id, row.finding_key, row.code, row.actor, row.reason, row.created_at,
               row.until, row.revoked_at, row.revoked_by)


def add(conn: Connection, *, key: str, code: str, actor: str, reason: str, at: int,
        until: int | None) -> Ack:
    """Record an ack of finding ``key`` (chained); returns it."""
    ack_id = uuid7()
    conn.execute(finding_acks.insert().values(
        id=ack_id, finding_key=key, code=code, actor=actor, reason=reason, created_at=at,
        until=until, revoked_at=None, revoked_by=None))
    records.record(conn, "finding_acks", [ack_id])
    return get(conn, ack_id)


def revoke(conn: Connection, ack_ids: Iterable[str], *, by: str, at: int) -> int:
    """Revoke the acks ``ack_ids`` (chained); returns how many were revoked."""
    ids = list(ack_ids)
    if not ids:
        return 0
    a = finding_acks.c
    conn.execute(finding_acks.update().where(a.id.in_(ids), a.revoked_at.is_(None))
                 .values(revoked_at=at, revoked_by=by))
    records.record(conn, "finding_acks", ids)
    return len(ids)


def get(conn: Connection, ack_id: str) -> Ack | None:
    row = conn.execute(sa.select(finding_acks).where(finding_acks.c.id == ack_id)).first()
    return _ack(row) if row else None


def _active_query(now: int):
    a, f = finding_acks.c, findings.c
    return (sa.select(finding_acks)
            .select_from(finding_acks.join(findings, f.key == a.finding_key))
            .where(a.revoked_at.is_(None), sa.or_(a.until.is_(None), a.until > now),
                   f.resolved_at.is_(None), a.created_at >= f.opened_at)
            .order_by(a.created_at, a.id))


def active_keys(now: int):
    """A subquery of the keys of findings with an active ack (for ``IN``)."""
    return _active_query(now).with_only_columns(finding_acks.c.finding_key).order_by(None)


def active(conn: Connection, now: int, keys: Iterable[str] | None = None) -> dict[str, Ack]:
    """finding key -> its active ack (the newest, should there be several)."""
    query = _active_query(now)
    if keys is not None:
        wanted = list(keys)
        if not wanted:
            return {}
        out = {}
        for i in range(0, len(wanted), 500):
            for row in conn.execute(query.where(
                    finding_acks.c.finding_key.in_(wanted[i:i + 500]))):
                out[row.finding_key] = _ack(row)
        return out
    return {row.finding_key: _ack(row) for row in conn.execute(query)}


def lapsed(conn: Connection, now: int) -> list[str]:
    """Keys of open findings whose current opening was acknowledged but has no active
    ack any more (expired or revoked) and that no "opened" alert announced since: they
    are announced again."""
    a, f, d = finding_acks.c, findings.c, alert_deliveries.c
    ended: dict[str, int] = {}
    for row in conn.execute(
            sa.select(a.finding_key, a.until, a.revoked_at)
            .select_from(finding_acks.join(findings, f.key == a.finding_key))
            .where(f.resolved_at.is_(None), a.created_at >= f.opened_at)):
        end = min(x for x in (row.until, row.revoked_at, now) if x is not None)
        ended[row.finding_key] = max(ended.get(row.finding_key, end), end)
    if not ended:
        return []
    keys = set(ended) - set(active(conn, now, ended))
    out = []
    for key in sorted(keys):
        announced = conn.execute(sa.select(d.id).where(
            d.finding_key == key, d.transition == "opened",
            d.created_at >= ended[key]).limit(1)).first()
        if announced is None:
            out.append(key)
    return out


def of_finding(conn: Connection, key: str) -> list[Ack]:
    """Every ack of finding ``key``, oldest first."""
    a = finding_acks.c
    return [_ack(r) for r in conn.execute(sa.select(finding_acks).where(
        a.finding_key == key).order_by(a.created_at, a.id))]


def made_after(conn: Connection, at: int, limit: int = 500) -> list[Ack]:
    """Acks made at or after ``at``, oldest first: the event stream."""
    a = finding_acks.c
    return [_ack(r) for r in conn.execute(sa.select(finding_acks).where(
        a.created_at >= at).order_by(a.created_at, a.id).limit(limit))]
