"""Aliases: mutable names whose every move is an append-only event, resolvable at any time."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import digest as dg
from ..errors import UnknownAliasError, UnknownArtifactError, ValidationError
from ..timefmt import iso, now_us
from . import records
from .decision_fields import DEFAULT_CLOCK_SKEW
from .fits import check_fits
from .schema import alias_events, artifacts

ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@:+-]{0,199}$")


@dataclass(frozen=True)
class AliasEvent:
    id: int
    alias: str
    digest: str
    previous_digest: str | None
    at: int
    actor: str | None
    reason: str | None
    kind: str
    evidence: dict | None
    token_id: str | None = None  # the API token that made the move (None from the CLI)

    def to_dict(self) -> dict:
        return {"id": self.id, "alias": self.alias, "digest": self.digest,
                "previous_digest": self.previous_digest, "at": iso(self.at),
                "actor": self.actor, "reason": self.reason, "kind": self.kind,
                "evidence": self.evidence, "token_id": self.token_id}


@dataclass(frozen=True)
class Resolution:
    """What an alias pointed to at a moment: the digest and the event that set it."""

    alias: str
    digest: str
    at: int
    since: int
    event_id: int
    kind: str
    artifact_kind: str

    def to_dict(self) -> dict:
        return {"alias": self.alias, "digest": self.digest, "at": iso(self.at),
                "since": iso(self.since), "event_id": self.event_id, "event_kind": self.kind,
                "artifact_kind": self.artifact_kind}


def check_alias(name: object) -> str:
    if not isinstance(name, str) or not ALIAS_RE.match(name) or name.startswith("sha256:"):
        raise ValidationError(f"not a valid alias name: {name!r}", field="alias",
                              hint="letters, digits and . _ / @ : + -, e.g. chat/v1")
    return name


def _event(row) -> AliasEvent:
    m = row._mapping
    return AliasEvent(m["id"], m["alias"], m["digest"], m["previous_digest"], m["at"],
                      m["actor"], m["reason"], m["kind"],
                      orjson.loads(m["evidence"]) if m["evidence"] else None,
                      m.get("token_id"))


def latest_event(conn: Connection, alias: str) -> AliasEvent | None:
    row = conn.execute(
        sa.select(alias_events).where(alias_events.c.alias == alias)
        .order_by(alias_events.c.at.desc(), alias_events.c.id.desc()).limit(1)
    ).first()
    return _event(row) if row else None


DELETE = "delete"  # the kind of the event that deletes an alias (its digest: the last target)


def delete_alias(conn: Connection, alias: str, *, reason: str | None = None,
                 actor: str | None = None, at: int | None = None,
                 evidence: dict | None = None) -> tuple[AliasEvent | None, bool]:
    """Record that ``alias`` was deleted: an event of kind ``delete`` naming the digest it
    pointed at (history stays whole; ``resolve`` after it says the alias was deleted).
    Returns (event, deleted); an alias already deleted, or never set, records nothing."""
    check_alias(alias)
    _not_future(at, DEFAULT_CLOCK_SKEW)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(alias))))
    last = latest_event(conn, alias)
    if last is None or last.kind == DELETE:
        return last, False
    if at is None:
        at = now_us()
    if at < last.at:
        at = last.at  # a deletion seen late is recorded at the last move, never before it
    values = dict(alias=alias, digest=last.digest, previous_digest=last.digest, at=at,
                  actor=actor, reason=reason, kind=DELETE,
                  evidence=dg.canonical_json(evidence).decode() if evidence else None)
    check_fits(alias_events, values)
    new_id = conn.execute(alias_events.insert().values(**values)).inserted_primary_key[0]
    records.record(conn, "alias_events", [new_id])
    return AliasEvent(id=new_id, evidence=evidence, **{k: v for k, v in values.items()
                                                       if k != "evidence"}), True


def _not_future(at: int | None, max_future: int) -> None:
    now = now_us()
    if at is not None and at > now + max_future:
        raise ValidationError(f"{iso(at)} is in the future (now is {iso(now)}); an alias moves "
                              "when it is moved", field="at",
                              hint="leave --at out to move it now; a move cannot be scheduled")


def _lock_key(alias: str) -> int:
    return int.from_bytes(hashlib.sha256(b"mw-alias:" + alias.encode()).digest()[:8],
                          "big", signed=True)


def set_alias(conn: Connection, alias: str, digest: str, *, reason: str | None = None,
              actor: str | None = None, at: int | None = None, kind: str | None = None,
              evidence: dict | None = None, token_id: str | None = None,
              max_future: int = DEFAULT_CLOCK_SKEW) -> tuple[AliasEvent, bool]:
    """Point ``alias`` at a registered ``digest``. Returns (event, moved); pointing at the
    current digest again records nothing. A move dated more than ``max_future`` after now
    is refused: it would hold the alias until then while ``resolve`` already answered it.
    Who may move a protected alias is decided above this layer
    (:mod:`modelward.registry.protection`)."""
    check_alias(alias)
    _not_future(at, max_future)
    dg.check_digest(digest)
    if conn.execute(sa.select(artifacts.c.digest).where(artifacts.c.digest == digest)).first() is None:
        raise UnknownArtifactError(f"cannot point {alias} at {digest}: no such artifact is registered",
                                   hint="register it first with `modelward register`")
    if conn.dialect.name == "postgresql":
        # Two writers moving one alias at once both read the same last event and both
        # appended (duplicate moves, out-of-order history): take turns per alias. SQLite's
        # BEGIN IMMEDIATE already serialises writers.
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(alias))))
    last = latest_event(conn, alias)
    if at is None:  # "now" is read once it is our turn, not before waiting for it
        at = now_us()
    if last is not None:
        if at < last.at:
            raise ValidationError(f"{iso(at)} is before the alias's last move at {iso(last.at)}; "
                                  "history is append-only", field="at")
        if last.digest == digest and last.kind != DELETE:
            return last, False
    if kind is None:
        if last is None or last.kind == DELETE:
            kind = "create"
        else:
            held_before = conn.execute(
                sa.select(alias_events.c.id).where(alias_events.c.alias == alias,
                                                   alias_events.c.digest == digest).limit(1)
            ).first()
            kind = "rollback" if held_before else "move"
    values = dict(alias=alias, digest=digest, previous_digest=last.digest if last else None,
                  at=at, actor=actor, reason=reason, kind=kind,
                  evidence=dg.canonical_json(evidence).decode() if evidence else None,
                  token_id=token_id)
    check_fits(alias_events, values)
    new_id = conn.execute(alias_events.insert().values(**values)).inserted_primary_key[0]
    records.record(conn, "alias_events", [new_id])
    return AliasEvent(id=new_id, evidence=evidence, **{k: v for k, v in values.items()
                                                       if k != "evidence"}), True


def resolve_at(conn: Connection, alias: str, at: int | None = None) -> Resolution:
    """What ``alias`` pointed to at ``at`` (now when omitted)."""
    check_alias(alias)
    when = now_us() if at is None else at
    latest = (
        sa.select(alias_events.c.digest, alias_events.c.at, alias_events.c.id, alias_events.c.kind)
        .where(alias_events.c.alias == alias, alias_events.c.at <= when)
        .order_by(alias_events.c.at.desc(), alias_events.c.id.desc()).limit(1)
    ).subquery()
    row = conn.execute(
        sa.select(latest, artifacts.c.kind.label("artifact_kind"))
        .join(artifacts, artifacts.c.digest == latest.c.digest)
    ).first()
    if row is None:
        first = conn.execute(sa.select(sa.func.min(alias_events.c.at))
                             .where(alias_events.c.alias == alias)).scalar()
        if first is None:
            raise UnknownAliasError(f"no alias named {alias!r}",
                                    hint="list aliases with `modelward alias list`")
        raise UnknownAliasError(f"alias {alias!r} did not exist at {iso(when)}; "
                                f"it was first set at {iso(first)}")
    if row.kind == DELETE:
        raise UnknownAliasError(f"alias {alias!r} was deleted at {iso(row.at)} (it pointed at "
                                f"{row.digest})", hint=f"`modelward alias history {alias}`")
    return Resolution(alias, row.digest, when, row.at, row.id, row.kind, row.artifact_kind)


def history(conn: Connection, alias: str) -> list[AliasEvent]:
    check_alias(alias)
    rows = conn.execute(sa.select(alias_events).where(alias_events.c.alias == alias)
                        .order_by(alias_events.c.at, alias_events.c.id)).all()
    if not rows:
        raise UnknownAliasError(f"no alias named {alias!r}")
    return [_event(r) for r in rows]


def all_events(conn: Connection) -> list[AliasEvent]:
    rows = conn.execute(sa.select(alias_events)
                        .order_by(alias_events.c.alias, alias_events.c.at, alias_events.c.id)).all()
    return [_event(r) for r in rows]


def latest_events(conn: Connection, at: int | None = None) -> dict[str, AliasEvent]:
    """Alias -> the event that set its target at ``at`` (the latest by time, then id), for
    every alias set by then; with ``at`` None, each alias's latest event. One query;
    ``conn`` is a connection or a guard view."""
    c = alias_events.c
    rn = sa.func.row_number().over(partition_by=c.alias,
                                   order_by=(c.at.desc(), c.id.desc())).label("rn")
    inner = sa.select(alias_events, rn)
    if at is not None:
        inner = inner.where(c.at <= at)
    inner = inner.subquery()
    rows = conn.execute(sa.select(*[inner.c[col.name] for col in alias_events.c])
                        .where(inner.c.rn == 1)).all()
    # sorted here, not in SQL: a PostgreSQL collation may order names unlike Python
    return {row.alias: _event(row) for row in sorted(rows, key=lambda r: r.alias)}


def targets_at(conn: Connection, at: int | None) -> dict[str, str]:
    """Which digest each alias pointed at at ``at``: alias -> digest, for every alias set
    by then and not deleted (with ``at`` None, the targets of the latest events). The one answer to "where
    did each alias point at t": guards, gates, commands and pages all ask it here."""
    return {alias: ev.digest for alias, ev in latest_events(conn, at).items()
            if ev.kind != DELETE}  # a deleted alias points at nothing


def by_digest(targets: dict[str, str]) -> dict[str, list[str]]:
    """alias -> digest turned around: digest -> its aliases, sorted."""
    out: dict[str, list[str]] = {}
    for alias, digest in sorted(targets.items()):
        out.setdefault(digest, []).append(alias)
    return out


def live_aliases(conn: Connection, at: int | None) -> dict[str, list[str]]:
    """Digest -> the aliases pointing at it at ``at`` (sorted): what makes an artifact
    live."""
    return by_digest(targets_at(conn, at))


def names_of(conn: Connection) -> dict[str, list[str]]:
    """Digest -> every alias that ever pointed at it, the latest to do so first (ties by
    alias name)."""
    c = alias_events.c
    rows = conn.execute(sa.select(c.digest, c.alias, sa.func.max(c.at))
                        .group_by(c.digest, c.alias)).all()
    named: dict[str, list[tuple[int, str]]] = {}
    for digest, alias, at in rows:
        named.setdefault(digest, []).append((-at, alias))
    return {digest: [alias for _at, alias in sorted(pairs)] for digest, pairs in named.items()}


def list_aliases(conn: Connection) -> list[AliasEvent]:
    """The latest event of every live alias (its current target), by alias; deleted ones
    are left out."""
    return [e for e in latest_events(conn).values() if e.kind != DELETE]

