"""Threshold policies: reads and writes of the ``threshold_policies`` table.

A policy is a name with versions, never edited: calibration writes version 1, each
recalibration the next, keeping the cut it replaced (``previous_cut``), the digest of the
reference scores and the substrate digests the cut was measured on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import canonical_json
from ..errors import NotFoundError, ValidationError
from ..timefmt import iso
from . import records
from .fits import check_fits
from .schema import threshold_policies

MODES = ("pass_rate", "quantile")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@:+-]{0,199}$")


@dataclass
class PolicyVersion:
    name: str
    version: int
    at: int
    mode: str  # "pass_rate": target is the share that passes; "quantile": the share below
    target: float
    cut: float
    previous_cut: float | None
    reference_digest: str
    substrate: dict = field(default_factory=dict)  # {"embedder": {"digest", "ref"}, …}
    actor: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["at"] = iso(self.at)
        return out


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(f"not a valid policy name: {name!r}", field="NAME",
                              hint="letters, digits and . _ / @ : + -, e.g. rag/support-gate")
    return name


def _row(r) -> PolicyVersion:
    m = dict(r._mapping)
    m["substrate"] = orjson.loads(m["substrate"]) if m["substrate"] else {}
    return PolicyVersion(**m)


def insert(conn: Connection, policy: PolicyVersion) -> None:
    values = dict(policy.__dict__)
    values["substrate"] = canonical_json(policy.substrate).decode()
    check_fits(threshold_policies, values)
    conn.execute(threshold_policies.insert().values(**values))
    records.record(conn, "threshold_policies", [(policy.name, policy.version)])


def history(conn: Connection, name: str) -> list[PolicyVersion]:
    """Every version of ``name``, oldest first (empty when there is none)."""
    t = threshold_policies.c
    rows = conn.execute(sa.select(threshold_policies).where(t.name == name)
                        .order_by(t.version)).all()
    return [_row(r) for r in rows]


def latest(conn: Connection, name: str) -> PolicyVersion:
    check_name(name)
    t = threshold_policies.c
    row = conn.execute(sa.select(threshold_policies).where(t.name == name)
                       .order_by(t.version.desc()).limit(1)).first()
    if row is None:
        raise NotFoundError(f"no threshold policy named {name!r}",
                            hint="calibrate one with `modelward threshold calibrate`")
    return _row(row)


def all_versions(conn: Connection) -> list[PolicyVersion]:
    """Every version of every policy, by name then version."""
    t = threshold_policies.c
    rows = conn.execute(sa.select(threshold_policies).order_by(t.name, t.version)).all()
    return [_row(r) for r in rows]


def list_latest(conn: Connection) -> list[PolicyVersion]:
    out: dict[str, PolicyVersion] = {}
    for p in all_versions(conn):
        out[p.name] = p
    return [out[k] for k in sorted(out)]
