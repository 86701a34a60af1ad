"""The records' half of verification from a checkpoint (:func:`.chain.verify` ``since=``).

A full verification (:func:`.records.verify_records`) reads every leaf and every chained
row. From a signed checkpoint at block *C* this reads only:

* the leaves of blocks after *C*, and recomputes those record blocks' roots;
* the rows of the keys those leaves name (the records written since *C*), each compared
  with its newest leaf, as the full check does (edited, deleted, inserted under a sealed
  key);
* one ``COUNT`` per chained table, compared with the rows the checkpoint signed, plus the
  keys created and minus those deleted since *C* (their state at *C* is their newest leaf
  at or before *C*): a row deleted or inserted anywhere in the table shows, even one no
  later block names.

What it does not prove: that a row sealed at or before *C* and not written since was not
edited *in place* after *C* (same key, so the counts agree). Only a full verification
(``modelward verify --full``) compares those; see docs/reliability.md.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .chain import BlockProblem
from .chain_since import label
from .records import (
    RECORD_KINDS,
    _canonical_rows,
    _check_record_blocks,
    _show_key,
    record_leaf,
)
from .scan import streamed
from .schema import chain_leaves


def row_counts(conn: Connection) -> dict[str, int]:
    """How many rows each chained kind holds now (one COUNT per table)."""
    out = {}
    for kind, k in RECORD_KINDS.items():
        q = sa.select(sa.func.count()).select_from(k.table)
        if k.where is not None:
            q = q.where(k.where(k.table))
        out[str(kind)] = int(conn.execute(q).scalar())  # a table name is a str subclass
    return out


def _live_at(conn: Connection, kind: str, keys: list[str], block: int) -> set[str]:
    """The keys (canonical JSON) whose newest leaf at or before ``block`` is not a
    deletion: the rows that existed when the checkpoint at ``block`` was made."""
    newest: dict[str, str] = {}
    c = chain_leaves.c
    for i in range(0, len(keys), 500):
        rows = conn.execute(sa.select(c.key, c.leaf)
                            .where(c.kind == kind, c.block <= block, c.key.in_(keys[i:i + 500]))
                            .order_by(c.block, c.pos))
        for key, leaf_hex in rows:
            newest[key] = leaf_hex
    return {key for key, leaf_hex in newest.items()
            if leaf_hex != record_leaf(kind, orjson.loads(key), None).hex()}


def verify_records_since(conn: Connection, blocks, problems: list[BlockProblem],
                         seen_blocks: set[int], since) -> tuple[int, dict[str, int]]:
    """Check the record blocks after ``since.block`` (``blocks``), the rows written since,
    and each table's row count against ``since.rows``; returns (rows read, rows now per
    kind)."""
    by_block: dict[int, list[tuple[str, str, str]]] = {}
    latest: dict[tuple[str, str], tuple[str, int]] = {}
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    with streamed(conn, "SELECT block, kind, key, leaf FROM chain_leaves WHERE "
                  f"block > {mark} ORDER BY block, pos", (since.block,)) as rows:
        for block, kind, key, leaf_hex in rows:  # a server-side cursor on PG
            by_block.setdefault(block, []).append((kind, key, leaf_hex))
            latest[(kind, key)] = (leaf_hex, block)
    _check_record_blocks(blocks, by_block, seen_blocks, problems)

    touched: dict[str, list[str]] = {}
    for kind, key in latest:
        touched.setdefault(kind, []).append(key)
    broken: dict[int, list[dict]] = {}
    total = 0
    counts = row_counts(conn)
    for kind, keys in touched.items():
        k = RECORD_KINDS.get(kind)
        if k is None:  # a leaf of an unknown kind: its block's root still covers it
            continue
        found = dict(_canonical_rows(conn, k, [tuple(orjson.loads(key)) for key in keys]))
        total += len(found)
        for key in keys:
            leaf_hex, block = latest[(kind, key)]
            values = found.get(key)
            if leaf_hex != record_leaf(kind, orjson.loads(key), values).hex():
                gone = record_leaf(kind, orjson.loads(key), None).hex()
                problem = ("deleted" if values is None else
                           "inserted" if leaf_hex == gone else "edited")
                broken.setdefault(block, []).append(
                    {"kind": kind, "id": _show_key(key), "problem": problem})
        expected = since.rows.get(kind, 0) - len(_live_at(conn, kind, keys, since.block))
        expected += len(found)
        if counts[kind] != expected:
            _count_problem(problems, since, kind, counts[kind], expected)
    for kind in RECORD_KINDS:
        if kind not in touched and counts[kind] != since.rows.get(kind, 0):
            _count_problem(problems, since, kind, counts[kind], since.rows.get(kind, 0))
    for block, records in broken.items():
        problems.append(BlockProblem(block, "records differ from what the block sealed",
                                     records=records))
    return total, counts


def _count_problem(problems, since, kind: str, now: int, expected: int) -> None:
    how = "deleted" if now < expected else "inserted"
    problems.append(BlockProblem(since.block, f"{kind} holds {now} rows, {expected} expected "
                                 f"from {label(since)} and the records "
                                 f"sealed since: rows were {how} without being sealed "
                                 "(`verify --full` names them)"))
