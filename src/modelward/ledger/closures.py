"""Training closures: the rows of ``closures`` and the canonical JSON records they index.

A closure record (everything needed to rebuild a trained artifact) is canonical JSON
stored in the blob store under its own digest, which is the closure's id. The row copies
out what queries and MW204 need without reading the blob: the output it produced, whether
the capture was complete, and the digests a rebuild restores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import digest as dg
from ..errors import IntegrityError, NotFoundError
from ..timefmt import iso
from . import records
from .engine import Store
from .schema import closures


@dataclass
class ClosureRow:
    digest: str
    output_digest: str | None
    name: str
    created_at: int
    exit_code: int
    complete: bool
    base_digest: str | None = None
    inputs: list[str] = field(default_factory=list)  # data inputs, then the base
    blobs: list[str] = field(default_factory=list)  # diff, params, lock files
    gaps: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``complete``, ``incomplete`` (captured with gaps) or ``failed`` (non-zero exit)."""
        if self.exit_code != 0:
            return "failed"
        return "complete" if self.complete else "incomplete"

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["created_at"] = iso(self.created_at)
        out["status"] = self.status
        return out


def _json(value: list) -> str:
    return dg.canonical_json(value).decode()


def _row(r) -> ClosureRow:
    m = r._mapping
    return ClosureRow(
        digest=m["digest"], output_digest=m["output_digest"], name=m["name"],
        created_at=m["created_at"], exit_code=m["exit_code"], complete=bool(m["complete"]),
        base_digest=m["base_digest"],
        inputs=orjson.loads(m["inputs"]) if m["inputs"] else [],
        blobs=orjson.loads(m["blobs"]) if m["blobs"] else [],
        gaps=orjson.loads(m["gaps"]) if m["gaps"] else [])


def store_record(store: Store, record: dict) -> str:
    """Put a record in the blob store; its digest is the closure's id."""
    return store.blobs.put_bytes(dg.canonical_json(record))


def load_record(store: Store, digest: str) -> dict:
    """The verified record of closure ``digest`` (NotFoundError / BlobCorruptError)."""
    try:
        data = store.blobs.get(digest)
    except NotFoundError:
        raise NotFoundError(f"the record of closure {digest} is not in the blob store",
                            hint="it was deleted by hand; the closure cannot be shown or "
                                 "reproduced") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise IntegrityError(f"the record of closure {digest} is not JSON") from None


def insert(conn: Connection, row: ClosureRow) -> bool:
    """Write a closure row; False when it was already there (same digest, same record)."""
    if conn.execute(sa.select(closures.c.digest)
                    .where(closures.c.digest == row.digest)).first() is not None:
        return False
    conn.execute(closures.insert().values(
        digest=row.digest, output_digest=row.output_digest, name=row.name,
        created_at=row.created_at, exit_code=row.exit_code, complete=row.complete,
        base_digest=row.base_digest, inputs=_json(row.inputs), blobs=_json(row.blobs),
        gaps=_json(row.gaps)))
    records.record(conn, "closures", [row.digest])
    return True


def find(conn: Connection, digest: str) -> ClosureRow | None:
    r = conn.execute(sa.select(closures).where(closures.c.digest == digest)).first()
    return None if r is None else _row(r)


def for_outputs(conn: Connection, digests) -> dict[str, list[ClosureRow]]:
    """Output digest -> its closures, oldest first; one query per 500 digests."""
    wanted = sorted({d for d in digests if d})
    found: dict[str, list[ClosureRow]] = {}
    for i in range(0, len(wanted), 500):
        rows = conn.execute(sa.select(closures)
                            .where(closures.c.output_digest.in_(wanted[i:i + 500]))
                            .order_by(closures.c.created_at, closures.c.digest)).all()
        for r in rows:
            found.setdefault(r.output_digest, []).append(_row(r))
    return found


def best(rows: list[ClosureRow]) -> ClosureRow | None:
    """The closure that speaks for an artifact: the newest complete one, else the newest."""
    if not rows:
        return None
    complete = [r for r in rows if r.status == "complete"]
    return (complete or rows)[-1]


def resolve(conn: Connection, digest: str) -> tuple[ClosureRow, int]:
    """The closure named by ``digest``: a closure's own digest, or a trained artifact's (its
    best closure); returns it and how many closures that artifact has."""
    dg.check_digest(digest, "digest")
    row = find(conn, digest)
    if row is not None:
        return row, 1
    rows = for_outputs(conn, [digest]).get(digest, [])
    if not rows:
        raise NotFoundError(f"no training closure is recorded for {digest}",
                            hint="give a closure digest or the digest of an artifact trained "
                                 "with `modelward closure capture`")
    return best(rows), len(rows)


def list_closures(conn: Connection, name: str | None = None) -> list[ClosureRow]:
    q = sa.select(closures).order_by(closures.c.created_at, closures.c.digest)
    if name:
        q = q.where(closures.c.name == name)
    return [_row(r) for r in conn.execute(q).all()]
