"""Embedder fingerprints: reads and writes of the ``fingerprints`` table.

One row per ``modelward fingerprint run``: the embedder alias and the digest it resolved
to, the probe set, the vectors (a blob), the measured noise floor, and the verdict against
the baseline of its substrate epoch (``baseline`` for an alias's first run, ``same``, or
``changed``, which opens epoch + 1 with this run as its baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import canonical_json
from ..errors import NotFoundError
from ..timefmt import iso
from . import records
from .fits import check_fits
from .schema import fingerprints

VERDICTS = ("baseline", "same", "inconclusive", "changed")


@dataclass
class Fingerprint:
    id: str
    embedder_alias: str
    embedder_digest: str
    at: int
    probes_digest: str
    vectors_digest: str
    repeats: int
    dims: int
    noise_floor: float
    vendor_model_id: str | None
    epoch: int
    baseline_id: str | None  # the run this one was compared with (None for the first)
    verdict: str
    magnitude: float | None
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["at"] = iso(self.at)
        return out


def _row(r) -> Fingerprint:
    m = dict(r._mapping)
    m["summary"] = orjson.loads(m["summary"]) if m["summary"] else {}
    return Fingerprint(**m)


def insert(conn: Connection, fp: Fingerprint) -> None:
    values = dict(fp.__dict__)
    values["summary"] = canonical_json(fp.summary).decode()
    check_fits(fingerprints, values)
    conn.execute(fingerprints.insert().values(**values))
    records.record(conn, "fingerprints", [fp.id])


def get(conn: Connection, run_id: str) -> Fingerprint:
    row = conn.execute(sa.select(fingerprints).where(fingerprints.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no fingerprint run {run_id}")
    return _row(row)


def history(conn: Connection, alias: str) -> list[Fingerprint]:
    """Every run of ``alias``, oldest first."""
    f = fingerprints.c
    rows = conn.execute(sa.select(fingerprints).where(f.embedder_alias == alias)
                        .order_by(f.at, f.id)).all()
    return [_row(r) for r in rows]


def latest(conn: Connection, alias: str) -> Fingerprint | None:
    f = fingerprints.c
    row = conn.execute(sa.select(fingerprints).where(f.embedder_alias == alias)
                       .order_by(f.at.desc(), f.id.desc()).limit(1)).first()
    return _row(row) if row else None


def epoch_baseline(conn: Connection, alias: str, epoch: int) -> Fingerprint | None:
    """The first run of ``epoch``: what later runs of that epoch are compared with."""
    f = fingerprints.c
    row = conn.execute(sa.select(fingerprints).where(f.embedder_alias == alias, f.epoch == epoch)
                       .order_by(f.at, f.id).limit(1)).first()
    return _row(row) if row else None


def epoch_runs(conn: Connection, alias: str, epoch: int) -> list[Fingerprint]:
    """Every run of ``epoch`` of ``alias``, oldest first: the baseline runs of the next."""
    f = fingerprints.c
    rows = conn.execute(sa.select(fingerprints).where(f.embedder_alias == alias, f.epoch == epoch)
                        .order_by(f.at, f.id)).all()
    return [_row(r) for r in rows]


def all_runs(conn: Connection, *, since: int | None = None) -> list[Fingerprint]:
    """Every run (at or after ``since``), by alias then time."""
    f = fingerprints.c
    q = sa.select(fingerprints).order_by(f.embedder_alias, f.at, f.id)
    if since is not None:
        q = q.where(f.at >= since)
    return [_row(r) for r in conn.execute(q).all()]
