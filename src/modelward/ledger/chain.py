"""The tamper-evident log: every fact the guards and the audit rely on.

One chain of numbered blocks. A block holds either decisions or *records* (the rows of
every other chained table), never both; each commits to the previous block's root, so the
newest root commits to the whole log::

    root(n) = sha256(0x02 || prev_root(n) || merkle(n) || leaves(n) as 8 bytes big-endian)

Leaves (RFC 6962 style: ``0x00`` before a leaf, ``0x01`` before an interior node, an odd
node carried up unchanged):

* a decision: ``sha256(0x00 || canonical)``, *canonical* the JSON array of its chained
  columns (:data:`CHAINED` order, as stored). Its block and position are the tree's.
* a record: ``sha256(0x00 || "mw-record/1" || 0x00 || kind || 0x00 || [key, values])``,
  *kind* the table (:data:`RECORD_KINDS`), *key* its primary key, *values* its columns in
  table order, or ``null`` for a deleted row. A decision's canonical text starts with
  ``[``, a record's prefix with ``m``: neither can pass for the other (domain separation),
  nor a record of one table for another's.

Chained records: alias events, artifacts and their parents, holds, eval runs (every state,
so the final summary), eval results, evidence opens, eval set deprecations, feedback and
the datasets built from it, people (the roster) and alias roles (owners and reviewers),
promotion requests and reviews, closures, experiments (salt, arms) and exposures,
fingerprints, threshold policies, and erasures (when a decision's text was erased; never
the text). Not chained: the kept text itself (erasable), API tokens and log-in codes.

Every write of a chained table calls :func:`record` in its own transaction: the rows as
they now are (read back, so what is hashed is what any backend returns) are sealed in a
new block, with one ``chain_leaves`` row per record (block, pos, kind, key, leaf hash).
A write that changes a row seals its new state; the newest leaf of a key is its state now.
Writers take turns (``Store.write``), so blocks are numbered without gaps.

:func:`verify` recomputes each decision block from its decisions and each record block
from its leaves, checks every link, then compares every chained row with the newest leaf
of its key: a row edited, deleted (its newest leaf is not a deletion) or inserted (no leaf)
is named with its kind and id and the block that sealed it. Re-hashing an edited row into
its leaf breaks the record block's root instead.

Canonical values: times are integer microseconds; floats are finite (NaN and ±inf are
refused at every write) and −0.0 is stored as 0.0 (SQLite does so anyway); decision strings
are NFC; booleans hash as ``true``/``false`` whichever the driver returns.

Existing ledgers: migration ``0010_chain_all`` seals the rows stored before it in one
record block after the newest block. Payload text is not chained: erasing it never
breaks verification, and the erasure itself is a record. Exported heads, their signatures and the heads log are
:mod:`modelward.ledger.heads`.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..display import plural
from ..timefmt import now_us
from . import schema as _schema
from .schema import chain_blocks, chain_leaves

GENESIS = "0" * 64
# The chained columns, in leaf order. Block and position are covered by the tree itself.
CHAINED = ("id", "at", "alias", "model_digest", "prompt_digest", "embedder_digest",
           "reranker_digest", "config_digest", "vendor_model_id", "vendor_fingerprint",
           "subject", "input_digest", "output_digest", "segments", "gate_threshold",
           "gate_candidates", "gate_passed", "process", "extra", "recorded_at")
N_CHAINED = len(CHAINED)

_sha = hashlib.sha256
_dumps = orjson.dumps
_first = operator.itemgetter(0)


def leaf(values) -> bytes:
    """The leaf hash of one decision from its chained values (a sequence in CHAINED order)."""
    return _sha(b"\x00" + _dumps(values)).digest()


_LEAF_PREFIX = _sha(b"\x00")


def leaves(rows, start: int = 0) -> list[bytes]:
    """:func:`leaf` of many rows whose chained values are ``row[start:start + N_CHAINED]``
    (extra leading or trailing columns are ignored). Same hashes, less per-row overhead:
    the hot loop of appends and of verify."""
    prefix, dumps, stop = _LEAF_PREFIX.copy, _dumps, start + N_CHAINED
    out = []
    append = out.append
    for row in rows:
        h = prefix()
        h.update(dumps(row[start:stop]))
        append(h.digest())
    return out


def merkle(leaves: list[bytes]) -> bytes:
    if not leaves:
        return _sha(b"").digest()
    level = leaves
    while len(level) > 1:
        pairs = iter(level)  # zip of one iterator with itself: (0, 1), (2, 3), …
        nxt = [_sha(b"\x01" + left + right).digest()
               for left, right in zip(pairs, pairs, strict=False)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def block_root(prev_root: str, leaves: list[bytes]) -> str:
    return _sha(b"\x02" + bytes.fromhex(prev_root) + merkle(leaves)
                + len(leaves).to_bytes(8, "big")).hexdigest()


def last_block(conn: Connection) -> tuple[int, str]:
    row = conn.execute(sa.select(chain_blocks.c.number, chain_blocks.c.root)
                       .order_by(chain_blocks.c.number.desc()).limit(1)).first()
    return (row.number, row.root) if row else (0, GENESIS)


def seal(conn: Connection, number: int, prev_root: str, leaves: list[bytes], first_at: int,
         last_at: int, *, records: int = 0) -> str:
    root = block_root(prev_root, leaves)
    values = dict(number=number, root=root, prev_root=prev_root, count=len(leaves) - records,
                  first_at=first_at, last_at=last_at, sealed_at=now_us())
    if records:  # a decision block leaves it to the column's default (0)
        values["records"] = records
    conn.execute(chain_blocks.insert().values(**values))
    return root


@dataclass
class BlockProblem:
    """One broken block (``block`` None: records that no block ever sealed) with the ids of
    its decisions and the kind, id and problem ("edited", "deleted", "inserted", "in a
    broken block") of each broken record."""

    block: int | None
    reason: str
    decision_ids: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"block": self.block, "reason": self.reason, "decision_ids": self.decision_ids,
                "records": self.records}

    def describe_records(self, limit: int = 20) -> str:
        shown = [f"{r['kind']} {r['id']} ({r['problem']})" for r in self.records[:limit]]
        more = len(self.records) - limit
        return ", ".join(shown) + (f" … (+{more})" if more > 0 else "")


def _block_order(p: BlockProblem):
    return (p.block is None, p.block or 0)


@dataclass
class VerifyReport:
    ok: bool
    blocks: int
    decisions: int
    head_root: str
    problems: list[BlockProblem]
    seconds: float = 0.0
    records: int = 0

    @property
    def first_broken(self) -> BlockProblem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "blocks": self.blocks, "decisions": self.decisions,
                "records": self.records,
                "head_root": self.head_root, "seconds": round(self.seconds, 3),
                "first_broken_block": self.first_broken.block if self.first_broken else None,
                "problems": [p.to_dict() for p in self.problems]}


def _select_chained(paramstyle: str, where: str = "") -> str:
    cols = ", ".join(CHAINED)
    return f"SELECT block, {cols} FROM decisions {where} ORDER BY block, pos"


def verify_block(conn: Connection, number: int, paramstyle: str) -> BlockProblem | None:
    """Recompute one block (used by audit); None when it verifies and links."""
    blk = conn.execute(sa.select(chain_blocks).where(chain_blocks.c.number == number)).first()
    if blk is None:
        return BlockProblem(number, "block record is missing")
    sql = _select_chained(paramstyle, f"WHERE block = {paramstyle}")
    rows = conn.exec_driver_sql(sql, (number,)).fetchall()
    ids = [r[1] for r in rows]
    if len(rows) != blk.count:
        return BlockProblem(number, f"holds {plural(len(rows), 'decision')}, sealed with {blk.count}", ids)
    if block_root(blk.prev_root, leaves(rows, 1)) != blk.root:
        return BlockProblem(number, "decisions do not match the sealed root", ids)
    if number > 1:
        prev = conn.execute(sa.select(chain_blocks.c.root)
                            .where(chain_blocks.c.number == number - 1)).scalar()
        if prev != blk.prev_root:
            return BlockProblem(number, "does not link to the previous block's root", ids)
    elif blk.prev_root != GENESIS:
        return BlockProblem(number, "first block does not start from the genesis root", ids)
    return None


def judge_blocks(rows, sealed: dict, problems: list[BlockProblem], seen_blocks: set[int], *,
                 stop_at_first: bool = False, progress=None) -> int:
    """Judge ``rows`` (``block, *CHAINED`` ordered by block, pos) against the ``sealed``
    blocks (number -> row with ``root``, ``prev_root``, ``count``); appends what is wrong to
    ``problems`` and returns how many rows it read. Rows are grouped by block in C and a
    block's leaves hashed in one call; its ids are listed only when it is broken."""
    total = 0
    for number, group in itertools.groupby(rows, key=_first):
        block_rows = list(group)
        total += len(block_rows)
        blk = sealed.get(number)
        if blk is None:
            problems.append(BlockProblem(number, "decisions name a block that was never sealed",
                                         [r[1] for r in block_rows]))
        elif len(block_rows) != blk.count:
            problems.append(BlockProblem(number, f"holds {plural(len(block_rows), 'decision')}, sealed "
                                         f"with {blk.count}", [r[1] for r in block_rows]))
        elif block_root(blk.prev_root, leaves(block_rows, 1)) != blk.root:
            problems.append(BlockProblem(number, "decisions do not match the sealed root",
                                         [r[1] for r in block_rows]))
        seen_blocks.add(number)
        if progress:
            progress(len(block_rows))
        if stop_at_first and problems:
            break
    return total


def fetched(cursor, size: int = 20000):
    """The rows of a DBAPI cursor, fetched ``size`` at a time."""
    return itertools.chain.from_iterable(iter(lambda: cursor.fetchmany(size), []))


def verify(conn: Connection, *, stop_at_first: bool = False, progress=None,
           judge=None) -> VerifyReport:
    """Recompute every block from the stored decisions and the chain of roots.

    ``judge(conn, blocks, problems, seen_blocks, progress)`` recomputes the blocks' roots and
    returns how many decisions it read, or None to let this process do it (the default).
    :mod:`modelward.registry.parallel_verify` passes one that spreads the work over worker
    processes; the persistence layer itself spawns none."""
    import time

    t0 = time.perf_counter()
    blocks = conn.execute(sa.select(chain_blocks.c.number, chain_blocks.c.root,
                                    chain_blocks.c.prev_root, chain_blocks.c.count,
                                    chain_blocks.c.records)
                          .order_by(chain_blocks.c.number)).all()
    by_number = {b.number: b for b in blocks}
    problems: list[BlockProblem] = []
    expected_prev = GENESIS
    for i, b in enumerate(blocks, start=1):
        if b.number != i:
            problems.append(BlockProblem(i, f"block {i} is missing (next is {b.number})"))
            break
        if b.prev_root != expected_prev:
            problems.append(BlockProblem(b.number, "does not link to the previous block's root"))
        expected_prev = b.root

    seen_blocks: set[int] = set()
    total = judge(conn, blocks, problems, seen_blocks, progress) if judge else None
    if total is None:
        cursor = conn.exec_driver_sql(_select_chained("")).cursor
        total = judge_blocks(fetched(cursor), by_number, problems, seen_blocks,
                             stop_at_first=stop_at_first, progress=progress)
        cursor.close()
    for b in blocks:
        if b.number not in seen_blocks and b.count:
            problems.append(BlockProblem(b.number, f"all {b.count} decisions of the block are gone"))
    records = verify_records(conn, blocks, problems, seen_blocks)
    problems.sort(key=_block_order)
    head = blocks[-1].root if blocks else GENESIS
    return VerifyReport(ok=not problems, blocks=len(blocks), decisions=total, head_root=head,
                        problems=problems, seconds=time.perf_counter() - t0, records=records)


# --- chained records --------------------------------------------------------------------
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
    if keys is None:
        batches = [q]
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
    for kind, k in RECORD_KINDS.items():
        for key_json, values in _canonical_rows(conn, k):
            entries.append((kind, key_json, record_leaf(kind, orjson.loads(key_json),
                                                        values).hex()))
    return _seal_records(conn, entries)


def _show_key(key_json: str):
    key = orjson.loads(key_json)
    return key[0] if len(key) == 1 else key


def verify_records(conn: Connection, blocks, problems: list[BlockProblem],
                   seen_blocks: set[int]) -> int:
    """Check the record blocks' roots and every chained row against the newest leaf of its
    key; appends what is wrong to ``problems``; returns how many records it read."""
    by_block: dict[int, list[tuple[str, str, str]]] = {}
    latest: dict[tuple[str, str], tuple[str, int]] = {}
    cursor = conn.exec_driver_sql(
        "SELECT block, kind, key, leaf FROM chain_leaves ORDER BY block, pos").cursor
    for block, kind, key, leaf_hex in fetched(cursor):
        by_block.setdefault(block, []).append((kind, key, leaf_hex))
        latest[(kind, key)] = (leaf_hex, block)
    cursor.close()
    sealed = {b.number: b for b in blocks}

    def listed(entries, what):
        return [{"kind": kind, "id": _show_key(key), "problem": what}
                for kind, key, _leaf in entries]

    for b in blocks:
        if b.count or b.number in seen_blocks:
            continue
        entries = by_block.get(b.number, [])
        records = getattr(b, "records", 0) or 0
        if len(entries) != records:
            problems.append(BlockProblem(b.number, f"holds {len(entries)} records, sealed "
                                         f"with {records}",
                                         records=listed(entries, "in a broken block")))
        elif block_root(b.prev_root, [bytes.fromhex(e[2]) for e in entries]) != b.root:
            problems.append(BlockProblem(b.number, "records do not match the sealed root",
                                         records=listed(entries, "in a broken block")))
    for number, entries in by_block.items():
        blk = sealed.get(number)
        if blk is None or blk.count:
            problems.append(BlockProblem(number, "records name a block that was never sealed"
                                         if blk is None else "records name a block of decisions",
                                         records=listed(entries, "in a broken block")))

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


def links_forward(conn: Connection, number: int) -> tuple[int, str | None]:
    """Whether every block after ``number`` links to the one before it, up to the newest:
    (newest block number, the first problem or None). A block re-sealed after an edit gets
    a new root, which the next block's ``prev_root`` does not name."""
    rows = conn.execute(sa.select(chain_blocks.c.number, chain_blocks.c.root,
                                  chain_blocks.c.prev_root)
                        .where(chain_blocks.c.number >= number)
                        .order_by(chain_blocks.c.number)).all()
    if not rows or rows[0].number != number:
        return (rows[-1].number if rows else 0), f"block {number} is missing"
    for before, after in itertools.pairwise(rows):
        if after.number != before.number + 1:
            return rows[-1].number, f"block {before.number + 1} is missing"
        if after.prev_root != before.root:
            return rows[-1].number, (f"block {after.number} does not link to block "
                                     f"{before.number}'s root: a block up to it was rewritten")
    return rows[-1].number, None
