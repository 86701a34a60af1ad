"""Decisions a page at a time, newest first: keyset paging on (at, id), never an offset.

A page ends with a cursor naming its last decision; the next page starts strictly after it
in the order (at desc, id desc), so decisions recorded meanwhile never shift a page and a
deep page costs what the first one does (``ix_decisions_at``). The cursor is opaque to
callers (url-safe base64 of ``v1:<at>:<id>``) and checked when read: anything that does not
decode to a time in range and a decision id is a ``ValidationError`` naming ``cursor``.

:func:`stream` walks every decision of a filter in the same order, a batch at a time, so an
export of millions holds one batch in memory."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import check_digest
from ..errors import ValidationError
from ..ids import is_uuid
from ..timefmt import MAX_US, MIN_US
from .decision_fields import DIGEST_FIELDS, nfc
from .decisions import Decision
from .schema import decisions

MAX_LIMIT = 1000
_TEXT_MAX = 300


@dataclass(frozen=True)
class Filter:
    """Which decisions: every given field must match (``digest`` matches any digest field);
    ``since`` inclusive, ``until`` exclusive, microseconds."""

    subject: str | None = None
    alias: str | None = None
    process: str | None = None
    digest: str | None = None
    since: int | None = None
    until: int | None = None

    def __post_init__(self) -> None:
        for name in ("subject", "alias", "process"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > _TEXT_MAX:
                raise ValidationError(f"{name} must be text of at most {_TEXT_MAX} characters",
                                      field=name)
            if "\x00" in value:  # PostgreSQL can neither store nor compare one
                raise ValidationError("holds a NUL byte", field=name)
        if self.digest is not None:
            check_digest(self.digest, field="digest")

    def where(self) -> list:
        c, out = decisions.c, []
        if self.subject is not None:
            out.append(c.subject == nfc(self.subject))
        if self.alias is not None:
            out.append(c.alias == self.alias)
        if self.process is not None:
            out.append(c.process == self.process)
        if self.digest is not None:
            out.append(sa.or_(*[c[f] == self.digest for f in DIGEST_FIELDS]))
        if self.since is not None:
            out.append(c.at >= self.since)
        if self.until is not None:
            out.append(c.at < self.until)
        return out


def encode_cursor(d: Decision) -> str:
    """The opaque cursor after decision ``d``."""
    return base64.urlsafe_b64encode(f"v1:{d.at}:{d.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(at, id) of a cursor :func:`encode_cursor` made; anything else is refused."""
    bad = ValidationError("not a cursor this ledger made", field="cursor",
                          hint="follow the next-page link (or `next_cursor`) as it was given")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 128:
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "v1" or not parts[1].lstrip("-").isdigit() \
            or not is_uuid(parts[2]):
        raise bad
    at = int(parts[1])
    if not MIN_US <= at <= MAX_US:
        raise bad
    return at, parts[2]


def _after(after: tuple[int, str]):
    at, id_ = after
    c = decisions.c
    # "at <= x" first: the planner walks ix_decisions_at from x instead of scanning
    return sa.and_(c.at <= at, sa.or_(c.at < at, c.id < id_))


def page(conn: Connection, flt: Filter, *, after: tuple[int, str] | None = None,
         limit: int = 50) -> tuple[list[Decision], bool]:
    """Up to ``limit`` decisions matching ``flt`` after the cursor position ``after``,
    newest first, and whether more follow."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1-{MAX_LIMIT}, not {limit}", field="limit")
    q = sa.select(decisions).where(*flt.where())
    if after is not None:
        q = q.where(_after(after))
    q = q.order_by(decisions.c.at.desc(), decisions.c.id.desc()).limit(limit + 1)
    found = [Decision.from_row(r) for r in conn.execute(q).all()]
    return found[:limit], len(found) > limit


def stream(conn: Connection, flt: Filter, *, batch: int = 1000) -> Iterator[list[Decision]]:
    """Every decision matching ``flt``, newest first, in lists of at most ``batch``."""
    after = None
    while True:
        found, more = page(conn, flt, after=after, limit=batch)
        if found:
            yield found
        if not more:
            return
        after = (found[-1].at, found[-1].id)
