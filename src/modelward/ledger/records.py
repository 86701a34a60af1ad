"""Chained records: every fact other than a decision, sealed in the chain of :mod:`.chain`.

Each write of a chained table calls :func:`record` (or :func:`record_many`) in its own
transaction; the rows as they now are (read back, so what is hashed is what any backend
returns) are sealed in a new record block of the one chain, with a ``chain_leaves`` row
per record. :func:`verify_records` is the records' half of :func:`.chain.verify`. The leaf
construction and the list of kinds are documented in :mod:`.chain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..timefmt import now_us
from . import schema as _schema
from .chain import BlockProblem, _dumps, _sha, block_root, last_block, seal
from .scan import streamed
from .schema import chain_leaves

# ---- chained records --------------------------------------------------------------------
# Every other fact the guards and the audit rely on is chained as a *record*: a leaf
#
#     sha256(0x00 || "mw-record/1" || 0x00 || kind || 0x00 || canonical([key, values]))
#
# where *kind* names the table, *key* is the row's primary key and *values* its chained
# columns in table order (``null`` when the row was deleted: a tombstone). A decision's
# leaf hashes a JSON array (its first byte after 0x00 is "["), a record's starts with "m":
# no record leaf can pass for a decision's, nor one kind's for another's.


@dataclass(frozen=True)
class RecordKind:
    """A chained table (or the part of one that ``where`` selects)."""

    kind: str
    table: sa.Table
    key: tuple[str, ...]
    columns: tuple[str, ...]
    where: object = None  # table -> SQL condition, for a kind that is part of a table


def _record_kind(table: sa.Table, columns=None, *, kind: str | None = None,
                 where=None) -> RecordKind:
    return RecordKind(kind or table.name, table, tuple(c.name for c in table.primary_key.columns),
                      tuple(columns or (c.name for c in table.columns)), where)


S = _schema
RECORD_KINDS: dict[str, RecordKind] = {k.kind: k for k in (
    _record_kind(S.alias_events),
    _record_kind(S.artifacts),
    _record_kind(S.artifact_parents),
    _record_kind(S.holds),
    _record_kind(S.eval_runs),
    _record_kind(S.eval_results),
    _record_kind(S.eval_opens),
    _record_kind(S.evalset_deprecations),
    _record_kind(S.feedback),
    _record_kind(S.dataset_feedback),
    _record_kind(S.people),
    _record_kind(S.alias_roles),
    _record_kind(S.promotion_requests),
    _record_kind(S.promotion_reviews),
    _record_kind(S.closures),
    _record_kind(S.experiments),
    _record_kind(S.exposures),
    _record_kind(S.fingerprints),
    _record_kind(S.threshold_policies),
    _record_kind(S.retired_blocks),  # decision blocks retention dropped (ledger/retirement.py)
    _record_kind(S.finding_acks),
    _record_kind(S.archives),  # Parquet files of archived decision blocks (ledger/archives.py)
    _record_kind(S.archived_blocks),
    # an erasure: when a decision's kept text was erased (the text itself is never chained)
    _record_kind(S.decision_payloads, ("decision_id", "erased_at"), kind="erasures",
                 where=lambda t: t.c.erased_at.isnot(None)),
)}
del S
_RECORD_PREFIX = b"\x00mw-record/1\x00"


def _bool(v):
    return None if v is None else bool(v)


def _float(v):
    return None if v is None else float(v) + 0.0  # -0.0 + 0.0 == 0.0


def _int(v):
    return None if v is None else int(v)


def _same(v):
    return v


def _coercer(column: sa.Column):
    """Stored value -> canonical value, whatever the driver returns (SQLite gives 0/1 for a
    boolean, PostgreSQL True/False; both give floats for a double)."""
    t = column.type
    if isinstance(t, sa.Boolean):
        return _bool
    if isinstance(t, (_schema.Float, sa.Float)):
        return _float
    if isinstance(t, sa.Integer):
        return _int
    return _same


def record_leaf(kind: str, key: list, values: list | None) -> bytes:
    """The leaf of one record: ``values`` in its kind's column order, None for a deletion."""
    return _sha(_RECORD_PREFIX + kind.encode() + b"\x00" + _dumps([key, values])).digest()


def _canonical_rows(conn: Connection, k: RecordKind, keys: list[tuple] | None = None):
    """``(key_json, values)`` of the stored rows of ``k`` (those with ``keys`` if given)."""
    t = k.table
    cols = [t.c[c] for c in k.columns]
    coerce = [_coercer(c) for c in cols]
    key_at = [k.columns.index(c) for c in k.key]
    q = sa.select(*cols)
    if k.where is not None:
        q = q.where(k.where(t))
    if keys is None:  # every row of the table: streamed (a server-side cursor on PG)
        batches = [q.execution_options(yield_per=5000)]
    elif len(k.key) == 1:
        col = t.c[k.key[0]]
        batches = [q.where(col.in_([key[0] for key in keys[i:i + 500]]))
                   for i in range(0, len(keys), 500)]
    else:
        tup = sa.tuple_(*[t.c[c] for c in k.key])
        batches = [q.where(tup.in_(keys[i:i + 500])) for i in range(0, len(keys), 500)]
    for query in batches:
        for row in conn.execute(query):
            values = [f(v) for f, v in zip(coerce, row, strict=True)]
            yield _dumps([values[i] for i in key_at]).decode(), values


def _key_json(k: RecordKind, key) -> str:
    key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
    coerce = [_coercer(k.table.c[c]) for c in k.key]
    return _dumps([f(v) for f, v in zip(coerce, key, strict=True)]).decode()


def _leaves_for(conn: Connection, kind: str, keys) -> list[tuple[str, str, str]]:
    k = RECORD_KINDS[kind]
    wanted = list(dict.fromkeys(tuple(x) if isinstance(x, (tuple, list)) else (x,)
                                for x in keys))
    if not wanted:
        return []
    found = {key_json: values for key_json, values in _canonical_rows(conn, k, wanted)}
    out = []
    for key in wanted:
        key_json = _key_json(k, key)
        values = found.get(key_json)
        out.append((kind, key_json,
                    record_leaf(kind, orjson.loads(key_json), values).hex()))
    return out


def record(conn: Connection, kind: str, keys) -> int | None:
    """Seal the rows of ``kind`` with primary keys ``keys`` as they now are into a new
    block, in the caller's write transaction (a key whose row is gone is sealed as a
    deletion). Call it after every insert, update or delete of a chained table; returns the
    block number (None when ``keys`` is empty)."""
    return record_many(conn, [(kind, keys)])


def record_many(conn: Connection, items) -> int | None:
    """:func:`record` of several kinds, ``[(kind, keys), …]``, in one block."""
    entries = []
    for kind, keys in items:
        entries.extend(_leaves_for(conn, kind, keys))
    return _seal_records(conn, entries)


def _seal_records(conn: Connection, entries: list[tuple[str, str, str]]) -> int | None:
    if not entries:
        return None
    if conn.dialect.name == "postgresql":
        # held already when the transaction came from Store.write(); a no-op then
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})")
    number, prev_root = last_block(conn)
    number += 1
    at = now_us()
    seal(conn, number, prev_root, [bytes.fromhex(e[2]) for e in entries], at, at,
         records=len(entries))
    conn.execute(chain_leaves.insert(), [
        {"block": number, "pos": i, "kind": kind, "key": key, "leaf": leaf_hex}
        for i, (kind, key, leaf_hex) in enumerate(entries)])
    return number


_PG_CHAIN_LOCK = 0x6D77_6368  # the advisory lock of ledger/engine.py's Store.write


def seal_existing(conn: Connection) -> int | None:
    """Seal every stored record into one block (upgrading a ledger whose records were not
    chained yet); returns its number (None when there is no record)."""
    entries = []
    present = set(sa.inspect(conn).get_table_names())
    for kind, k in RECORD_KINDS.items():
        if k.table.name not in present:  # a table a later migration creates (empty then)
            continue
        for key_json, values in _canonical_rows(conn, k):
            entries.append((kind, key_json, record_leaf(kind, orjson.loads(key_json),
                                                        values).hex()))
    return _seal_records(conn, entries)


def _show_key(key_json: str):
    key = orjson.loads(key_json)
    return key[0] if len(key) == 1 else key


def _listed(entries, what):
    return [{"kind": kind, "id": _show_key(key), "problem": what} for kind, key, _leaf in entries]


def _check_record_blocks(blocks, by_block, seen_blocks, problems: list[BlockProblem]) -> None:
    """Each record block of ``blocks`` against its leaves (``by_block``), and leaves naming a
    block that is not a sealed record block."""
    sealed = {b.number: b for b in blocks}
    for b in blocks:
        if b.count or b.number in seen_blocks:
            continue
        entries = by_block.get(b.number, [])
        records = getattr(b, "records", 0) or 0
        if len(entries) != records:
            problems.append(BlockProblem(b.number, f"holds {len(entries)} records, sealed "
                                         f"with {records}",
                                         records=_listed(entries, "in a broken block")))
        elif block_root(b.prev_root, [bytes.fromhex(e[2]) for e in entries]) != b.root:
            problems.append(BlockProblem(b.number, "records do not match the sealed root",
                                         records=_listed(entries, "in a broken block")))
    for number, entries in by_block.items():
        blk = sealed.get(number)
        if blk is None or blk.count:
            problems.append(BlockProblem(number, "records name a block that was never sealed"
                                         if blk is None else "records name a block of decisions",
                                         records=_listed(entries, "in a broken block")))


def verify_records(conn: Connection, blocks, problems: list[BlockProblem],
                   seen_blocks: set[int]) -> int:
    """Check the record blocks' roots and every chained row against the newest leaf of its
    key; appends what is wrong to ``problems``; returns how many records it read."""
    by_block: dict[int, list[tuple[str, str, str]]] = {}
    latest: dict[tuple[str, str], tuple[str, int]] = {}
    with streamed(conn, "SELECT block, kind, key, leaf FROM chain_leaves "
                  "ORDER BY block, pos") as rows:  # a server-side cursor on PG
        for block, kind, key, leaf_hex in rows:
            by_block.setdefault(block, []).append((kind, key, leaf_hex))
            latest[(kind, key)] = (leaf_hex, block)
    _check_record_blocks(blocks, by_block, seen_blocks, problems)

    broken: dict[int | None, list[dict]] = {}
    total = 0
    for kind, k in RECORD_KINDS.items():
        present = set()
        for key_json, values in _canonical_rows(conn, k):
            total += 1
            present.add(key_json)
            leaf_hex = record_leaf(kind, orjson.loads(key_json), values).hex()
            newest = latest.get((kind, key_json))
            if newest is None:
                broken.setdefault(None, []).append(
                    {"kind": kind, "id": _show_key(key_json), "problem": "inserted"})
            elif newest[0] != leaf_hex:
                broken.setdefault(newest[1], []).append(
                    {"kind": kind, "id": _show_key(key_json), "problem": "edited"})
        for (lkind, key_json), (leaf_hex, block) in latest.items():
            if lkind != kind or key_json in present:
                continue
            if leaf_hex != record_leaf(kind, orjson.loads(key_json), None).hex():
                broken.setdefault(block, []).append(
                    {"kind": kind, "id": _show_key(key_json), "problem": "deleted"})
    for block, records in broken.items():
        if block is None:
            problems.append(BlockProblem(None, "records that no block ever sealed",
                                         records=records))
        else:
            problems.append(BlockProblem(block, "records differ from what the block sealed",
                                         records=records))
    return total
