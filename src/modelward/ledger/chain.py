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
  *kind* the table (:data:`.records.RECORD_KINDS`), *key* its primary key, *values* its columns in
  table order, or ``null`` for a deleted row. A decision's canonical text starts with
  ``[``, a record's prefix with ``m``: neither can pass for the other (domain separation),
  nor a record of one table for another's.

Chained records: alias events, artifacts and their parents, holds, eval runs (every state,
so the final summary), eval results, evidence opens, eval set deprecations, feedback and
the datasets built from it, people (the roster) and alias roles (owners and reviewers),
promotion requests and reviews, closures, experiments (salt, arms) and exposures,
fingerprints, threshold policies, and erasures (when a decision's text was erased; never
the text). Not chained: the kept text itself (erasable), the per-subject keys of the keyed
text digests (:mod:`.subject_keys`: erasure destroys them), API tokens and log-in codes.

Every write of a chained table calls :func:`.records.record` in its own transaction: the rows as
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
from .schema import chain_blocks

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
    from .records import verify_records  # records build on this module's blocks

    records = verify_records(conn, blocks, problems, seen_blocks)
    problems.sort(key=_block_order)
    head = blocks[-1].root if blocks else GENESIS
    return VerifyReport(ok=not problems, blocks=len(blocks), decisions=total, head_root=head,
                        problems=problems, seconds=time.perf_counter() - t0, records=records)


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
