"""Decisions by segment: the reads behind eval-set representativeness (``modelward evalset
compare|rebuild``, MW303).

Segments are stored as canonical JSON, so equal segment sets group together in SQL and
Python reads one row per distinct combination, not one per decision. SELECTs only:
``conn`` may be a connection or a guard view.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import decision_payloads, decisions

_CHUNK = 500
_YIELD = 2000


def segments_of(conn: Connection, ids: Iterable[str]) -> dict[str, dict]:
    """Decision id -> its segments, for the ids that name a recorded decision."""
    wanted = sorted(set(ids))
    found: dict[str, dict] = {}
    for i in range(0, len(wanted), _CHUNK):
        for did, segs in conn.execute(sa.select(decisions.c.id, decisions.c.segments)
                                      .where(decisions.c.id.in_(wanted[i:i + _CHUNK]))):
            found[did] = orjson.loads(segs) if segs else {}
    return found


def counts(conn: Connection, since: int, until: int) -> list[tuple[dict, int]]:
    """(segments, decisions) per distinct segments value of the decisions in [since, until)."""
    d = decisions.c
    rows = conn.execute(sa.select(d.segments, sa.func.count())
                        .where(d.at >= since, d.at < until).group_by(d.segments))
    return [(orjson.loads(segs) if segs else {}, n) for segs, n in rows]


def counts_with_text(conn: Connection, since: int, until: int) -> list[tuple[dict, int, int]]:
    """(segments, decisions, decisions whose input text is stored) per distinct segments
    value of the decisions in [since, until)."""
    d, p = decisions.c, decision_payloads.c
    rows = conn.execute(
        sa.select(d.segments, sa.func.count(), sa.func.count(p.input_text))
        .select_from(decisions.outerjoin(decision_payloads, p.decision_id == d.id))
        .where(d.at >= since, d.at < until).group_by(d.segments))
    return [(orjson.loads(segs) if segs else {}, n, with_text) for segs, n, with_text in rows]


def with_text(conn: Connection, since: int, until: int) -> Iterator[tuple[str, str | None]]:
    """(id, segments as stored JSON text) of every decision in [since, until) whose input
    text is stored, streamed in no particular order."""
    d, p = decisions.c, decision_payloads.c
    yield from conn.execute(
        sa.select(d.id, d.segments)
        .select_from(decisions.join(decision_payloads, p.decision_id == d.id))
        .where(d.at >= since, d.at < until, p.input_text.is_not(None))
        .execution_options(yield_per=_YIELD))


def inputs_of(conn: Connection, ids: list[str]) -> Iterator[tuple[str, dict, str | None]]:
    """(id, segments, input text) of the decisions ``ids`` that have a stored payload,
    by id within each chunk of 500."""
    d, p = decisions.c, decision_payloads.c
    for i in range(0, len(ids), _CHUNK):
        for did, segs, text in conn.execute(
                sa.select(d.id, d.segments, p.input_text)
                .join(decision_payloads, p.decision_id == d.id)
                .where(d.id.in_(ids[i:i + _CHUNK])).order_by(d.id)):
            yield did, orjson.loads(segs) if segs else {}, text
