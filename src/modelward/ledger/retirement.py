"""Retention of decisions: whole blocks past the window dropped, and said so in the chain.

A decision block is *retired* when every decision in it is older than the retention
cut-off and none names an artifact under an active hold. On PostgreSQL whole monthly
partitions go (``DROP TABLE`` of the month, :mod:`.partitions`), oldest first, while the
month ends before the cut-off, the default partition holds nothing that old, no block
reaches from the month into the next, and no decision in it names a held digest; what is
left past the window (the boundary month, a month with a hold, SQLite) goes by deleting
the rows of whole blocks that qualify. A block is never split: its root stays provable.

Each retired block gets a ``retired_blocks`` row, chained in the same transaction
(:mod:`.records`), and :func:`.chain.verify` reports a block whose decisions are gone as
"retired by retention" only when that row says so; any other missing block is broken.
The block's root and link stay in ``chain_blocks``, so the chain still verifies across it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import partitions, records, rollups
from .decisions import DIGEST_FIELDS
from .schema import archived_blocks, chain_blocks, decisions, retired_blocks


@dataclass
class Retired:
    before: int
    blocks: list[int] = field(default_factory=list)
    decisions: int = 0
    partitions: list[str] = field(default_factory=list)  # PostgreSQL months dropped whole
    row_blocks: int = 0  # blocks retired by deleting their rows

    def to_dict(self) -> dict:
        return {"before": self.before, "blocks": len(self.blocks), "decisions": self.decisions,
                "partitions_dropped": self.partitions, "blocks_by_row_delete": self.row_blocks}


def retired_numbers(conn: Connection) -> set[int]:
    return set(conn.execute(sa.select(retired_blocks.c.block)).scalars())


def _held_clause(held: set[str]) -> str:
    """SQL naming decisions that name a held digest (the digests are checked ``sha256:<hex>``
    values, inlined: there are few)."""
    if not held:
        return "FALSE"
    listed = ", ".join(f"'{d}'" for d in sorted(held) if d.replace(":", "").isalnum())
    return " OR ".join(f"{f} IN ({listed})" for f in DIGEST_FIELDS)


def _forget_ids(conn: Connection, source: str) -> None:
    """Ids and kept text of the decisions in ``source`` (a table or a subquery): the id may
    be used again, the text goes with its decision (an erased one stays: it is chained)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"DELETE FROM decision_ids WHERE id IN (SELECT id FROM {source})")
    conn.exec_driver_sql(f"DELETE FROM decision_payloads WHERE erased_at IS NULL AND "
                         f"decision_id IN (SELECT id FROM {source})")


def _drop_partitions(conn: Connection, before: int, held: set[str], out: Retired) -> None:
    for name, ym in partitions.existing(conn).items():
        lo, hi = partitions.bounds(*ym)
        if hi > before:
            return
        if conn.exec_driver_sql(f"SELECT 1 FROM {partitions.DEFAULT} WHERE at < {hi} "
                                "LIMIT 1").first():
            return
        if conn.exec_driver_sql(f"SELECT 1 FROM chain_blocks WHERE count > 0 AND "
                                f"first_at < {hi} AND last_at >= {hi} LIMIT 1").first():
            return  # a block reaches into the next month: never split a block
        if conn.exec_driver_sql(f"SELECT 1 FROM {name} WHERE {_held_clause(held)} "
                                "LIMIT 1").first():
            return  # a hold keeps the month; older months are gone already
        blocks = sorted(conn.exec_driver_sql(f"SELECT DISTINCT block FROM {name}").scalars())
        _forget_ids(conn, name)
        conn.exec_driver_sql(f"ALTER TABLE decisions DETACH PARTITION {name}")
        conn.exec_driver_sql(f"DROP TABLE {name}")
        out.partitions.append(name)
        out.blocks.extend(b for b in blocks if b not in out.blocks)  # one may span months


def _delete_rows(conn: Connection, before: int, held: set[str], out: Retired) -> None:
    # blocks moved to Parquet (ledger/archives.py) are proven from their files: not retired
    done = (retired_numbers(conn) | set(out.blocks)
            | set(conn.execute(sa.select(archived_blocks.c.block)).scalars()))
    old = [n for n in conn.execute(
        sa.select(chain_blocks.c.number).where(chain_blocks.c.count > 0,
                                                chain_blocks.c.last_at < before)).scalars()
        if n not in done]
    if not old:
        return
    held_blocks = set()
    if held:
        held_blocks = set(conn.exec_driver_sql(
            f"SELECT DISTINCT block FROM decisions WHERE at < {before} AND "
            f"({_held_clause(held)})").scalars())
    doomed = [n for n in old if n not in held_blocks]
    for i in range(0, len(doomed), 500):
        part = doomed[i:i + 500]
        listed = ", ".join(str(int(n)) for n in part)
        _forget_ids(conn, f"decisions WHERE block IN ({listed})")
        conn.execute(decisions.delete().where(decisions.c.block.in_(part)))
    out.blocks.extend(doomed)
    out.row_blocks = len(doomed)


def retire(conn: Connection, *, before: int, held: set[str], now: int) -> Retired:
    """Retire every block whose decisions are all older than ``before`` and name no digest
    in ``held``, in the caller's write transaction (``store.write()``)."""
    out = Retired(before)
    if conn.dialect.name == "postgresql" and partitions.has_partitions(conn):
        _drop_partitions(conn, before, held, out)
    n_partition = len(out.blocks)
    _delete_rows(conn, before, held, out)
    if not out.blocks:
        return out
    counts = dict(conn.execute(sa.select(chain_blocks.c.number, chain_blocks.c.count)
                               .where(chain_blocks.c.number.in_(out.blocks))).all())
    out.decisions = sum(counts.values())
    rollups.refresh(conn, out.blocks)  # a block without decisions keeps no rollups
    mark(conn, out.blocks[:n_partition], before=before, now=now, method="partition")
    mark(conn, out.blocks[n_partition:], before=before, now=now, method="rows")
    return out


def mark(conn: Connection, blocks: list[int], *, before: int, now: int, method: str) -> None:
    """Record ``blocks`` as retired (chained in the caller's transaction)."""
    if not blocks:
        return
    rows = [{"block": n, "at": now, "before_at": before, "method": method} for n in blocks]
    for i in range(0, len(rows), 1000):
        conn.execute(retired_blocks.insert(), rows[i:i + 1000])
    records.record(conn, "retired_blocks", blocks)
