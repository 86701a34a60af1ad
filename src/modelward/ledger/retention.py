"""What the ledger keeps: holds on artifacts, and the artifacts decisions reference.

Holds are append-only: placing one inserts a row; releasing it inserts another row whose
``releases`` names the hold it ends. Nothing in ``holds`` is ever updated or deleted, so
the table is the full history of who protected what, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..timefmt import iso
from . import records
from .decisions import DIGEST_FIELDS
from .schema import decisions, holds


@dataclass
class Hold:
    """A hold on an artifact's payload; ``released_*`` are set once a release row exists."""

    id: int
    digest: str
    reason: str
    actor: str | None
    at: int
    release_id: int | None = None
    released_at: int | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.release_id is None

    def to_dict(self) -> dict:
        return {"id": self.id, "digest": self.digest, "reason": self.reason,
                "actor": self.actor, "at": iso(self.at), "active": self.active,
                "release": None if self.active else {
                    "id": self.release_id, "at": iso(self.released_at),
                    "actor": self.released_by, "reason": self.release_reason}}


def place_hold(conn: Connection, digest: str, reason: str, actor: str | None, at: int) -> Hold:
    new_id = conn.execute(holds.insert().values(
        digest=digest, reason=reason, actor=actor, at=at, releases=None)).inserted_primary_key[0]
    records.record(conn, "holds", [new_id])
    return Hold(int(new_id), digest, reason, actor, at)


def release_hold(conn: Connection, hold: Hold, reason: str, actor: str | None, at: int) -> Hold:
    """Append the release of an active ``hold``; returns the hold with its release filled."""
    new_id = conn.execute(holds.insert().values(
        digest=hold.digest, reason=reason, actor=actor, at=at,
        releases=hold.id)).inserted_primary_key[0]
    records.record(conn, "holds", [new_id])
    return Hold(hold.id, hold.digest, hold.reason, hold.actor, hold.at, int(new_id), at, actor,
                reason)


def list_holds(conn: Connection, *, include_released: bool = False) -> list[Hold]:
    """Holds, oldest first, each with its release when it has one."""
    rows = conn.execute(sa.select(holds).order_by(holds.c.id)).all()
    placed: dict[int, Hold] = {}
    for r in rows:
        if r.releases is None:
            placed[r.id] = Hold(r.id, r.digest, r.reason, r.actor, r.at)
    for r in rows:
        if r.releases is not None and r.releases in placed and placed[r.releases].active:
            h = placed[r.releases]
            h.release_id, h.released_at, h.released_by, h.release_reason = (
                r.id, r.at, r.actor, r.reason)
    return [h for h in placed.values() if include_released or h.active]


def get_hold(conn: Connection, hold_id: int) -> Hold | None:
    for h in list_holds(conn, include_released=True):
        if h.id == hold_id:
            return h
    return None


@dataclass
class References:
    """How many decisions name a digest, and the earliest and latest of them."""

    count: int
    last_at: int
    first_at: int

    def merge(self, other: References) -> References:
        return References(self.count + other.count, max(self.last_at, other.last_at),
                          min(self.first_at, other.first_at))


def decision_references(conn: Connection, *, since: int | None = None,
                        after_block: int | None = None,
                        rollups: bool = False) -> dict[str, References]:
    """Every artifact digest named by decisions at or after ``since`` (and, when given, in
    blocks after ``after_block``): one pass over those decisions (``rollups``: over the
    window's per-block rollups)."""
    out: dict[str, References] = {}
    if after_block is None:  # decisions moved to Parquet files still keep what they name
        from .archives import references as archived

        out = {d: References(*v) for d, v in archived(conn, since=since).items()}
    if rollups and after_block is None:
        from .rollup_usage import references

        for d, v in references(conn, since=since).items():
            out[d] = out[d].merge(References(*v)) if d in out else References(*v)
        return out
    cols = [decisions.c[f] for f in DIGEST_FIELDS]
    q = sa.select(*cols, sa.func.count(), sa.func.max(decisions.c.at),
                  sa.func.min(decisions.c.at)).group_by(*cols)
    if since is not None:
        q = q.where(decisions.c.at >= since)
    if after_block is not None:
        q = q.where(decisions.c.block > after_block)
    n_fields = len(DIGEST_FIELDS)
    for row in conn.execute(q):
        refs = References(int(row[n_fields]), int(row[n_fields + 1]), int(row[n_fields + 2]))
        for digest in set(row[:n_fields]):
            if digest is not None:
                out[digest] = out[digest].merge(refs) if digest in out else refs
    return out
