"""Registry events: the alias moves and registrations that acknowledge a change.

A hosted model that starts reporting another model id (MW104), or an embedder whose
fingerprint moves (MW501), is a silent change unless the registry recorded something
about it in between: an alias event naming it, or a registration of it, of a child of it,
or of its successor. SELECTs only: ``conn`` may be a connection or a guard view.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import alias_events, artifact_parents, artifacts


def event_times(conn: Connection, digest: str, *, successor_hosted_id: str | None = None
                ) -> list[int]:
    """Sorted times of the registry events about ``digest``: alias events that point at it
    or away from it, its registration and its children's, and (when given) the
    registration of the hosted model ``successor_hosted_id``."""
    times = list(conn.execute(sa.select(alias_events.c.at).where(sa.or_(
        alias_events.c.digest == digest, alias_events.c.previous_digest == digest))).scalars())
    reg = [artifacts.c.digest == digest,
           artifacts.c.digest.in_(sa.select(artifact_parents.c.child)
                                  .where(artifact_parents.c.parent == digest))]
    if successor_hosted_id is not None:
        reg.append(artifacts.c.hosted_id == successor_hosted_id)
    times += conn.execute(sa.select(artifacts.c.created_at).where(sa.or_(*reg))).scalars()
    return sorted(times)


def acknowledged(conn: Connection, alias: str, digests: Iterable[str], start: int, end: int,
                 *, embedder_names: Iterable[str] = ()) -> bool:
    """Whether a registry event in (start, end] acknowledges a change of ``alias``: a move
    of the alias or of an alias to or from one of ``digests``, or the registration of one
    of them, a child of them, or an embedder named one of ``embedder_names``."""
    digests, names = set(digests), list(embedder_names)
    ev = alias_events.c
    moved = conn.execute(sa.select(ev.id).where(
        ev.at > start, ev.at <= end,
        sa.or_(ev.alias == alias, ev.digest.in_(digests), ev.previous_digest.in_(digests)))
        .limit(1)).first()
    if moved is not None:
        return True
    a = artifacts.c
    registered = conn.execute(sa.select(a.digest).where(
        a.created_at > start, a.created_at <= end,
        sa.or_(a.digest.in_(digests),
               a.digest.in_(sa.select(artifact_parents.c.child)
                            .where(artifact_parents.c.parent.in_(digests))),
               sa.and_(a.kind == "embedder", a.name.in_(names)) if names else sa.false()))
        .limit(1)).first()
    return registered is not None
