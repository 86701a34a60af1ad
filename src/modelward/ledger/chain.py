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

Verification from checkpoints: a signed checkpoint (:mod:`.checkpoints`, table
``chain_checkpoints``) vouches that the chain up to block *N* verified; it signs *N*, its
root, the decisions in blocks up to *N* and each chained table's row count. ``verify(since=
checkpoint)`` then recomputes only the blocks after *N* (decision and record blocks, links
from the signed root), compares the records written since with their newest leaves
(:mod:`.records_since`), and checks that block *N* still has the signed root, that the
decisions up to *N* still number what it signed (one index count) and that each table's
row count is the signed one plus the keys created and minus those deleted since. So a
decision or record deleted or inserted anywhere, anything after *N*, and a consistent
re-seal of blocks up to *N* are caught; an *in-place* edit of a row the checkpoint covers
is not (same count, no new leaf): only a full verification (``verify --full``), which
should run on a schedule, recomputes those. Checkpoints are made only after a successful
verification and only when a key can sign them; an unsigned or badly signed checkpoint
row is itself a problem. docs/reliability.md tables what each mode proves.

Rollups (:mod:`.rollups`, one row per distinct alias/digests/process/vendor id of a
decision block, what the counting guards read) are not leaves: they are a function of the
block's decisions, so :func:`verify` recomputes them for the blocks it verifies and a
block whose stored rollups differ is broken. Decision block roots are unchanged by them.
That comparison is one aggregate the database computes (about half of a full
verification's time on SQLite); ``verify(apart=True)`` runs it on a connection of its own,
in a thread, while this one recomputes the chain, so the two overlap on a machine with a
second core (the database does the work with the GIL released; same findings).

Archived blocks (:mod:`.archives`, ``modelward archive``): a block whose decisions were
moved to a Parquet file keeps its root and link here; an ``archived_blocks`` record (chained)
makes :func:`verify` count it as archived rather than gone, and ``verify --full``
(:mod:`modelward.registry.archive`) recomputes it from the file.

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
from .scan import fetched, streamed  # noqa: F401  (fetched: callers import it from here)
from .schema import chain_blocks

GENESIS = "0" * 64
# The chained columns, in leaf order. Block and position are covered by the tree itself.
CHAINED = ("id", "at", "alias", "model_digest", "prompt_digest", "embedder_digest",
           "reranker_digest", "config_digest", "vendor_model_id", "vendor_fingerprint",
           "subject", "input_digest", "output_digest", "segments", "gate_threshold",
           "gate_candidates", "gate_passed", "process", "extra", "recorded_at")
N_CHAINED = len(CHAINED)
# Decision rows read at once while the chain is recomputed. Each costs ~3 KiB in the client
# on PostgreSQL (the driver's copy of the fetched batch and the Python values made from
# it): 20,000 a fetch held ~60 MiB; 5,000 hold ~17 MiB, 2.5 blocks of a recorder's
# flushes, with no difference in time beyond the noise at 1M and 10M (docs/benchmarks.md).
VERIFY_BATCH = 5000

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


def changed_after(conn: Connection, after: int) -> tuple[int, set[str]]:
    """(the newest block, what the blocks after ``after`` hold: ``decisions`` for decision
    blocks, and the kind of each record leaf): reads the new blocks' rows only."""
    from .schema import chain_leaves

    c = chain_blocks.c
    head = conn.execute(sa.select(sa.func.max(c.number))).scalar() or 0
    if head <= after:
        return head, set()
    kinds = set(conn.execute(sa.select(chain_leaves.c.kind).where(
        chain_leaves.c.block > after).distinct()).scalars())
    if conn.execute(sa.select(c.number).where(c.number > after, c.records == 0, c.count > 0)
                    .limit(1)).first() is not None:
        kinds.add("decisions")
    return head, kinds


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
    # verification from a checkpoint (ledger/checkpoints.py): the signed checkpoint it
    # started from (None: all history was recomputed), the newest block, every decision
    # through it (checkpoint's + new) and each record kind's rows: what a next checkpoint signs
    checkpoint: dict | None = None
    head_block: int = 0
    all_decisions: int = 0
    rows: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    full_at: int | None = None  # when history was last recomputed in full, if known
    retired: int = 0  # blocks whose decisions retention dropped (their roots still link)
    archived: int = 0  # blocks whose decisions were moved to Parquet files (`archive`)

    @property
    def first_broken(self) -> BlockProblem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "blocks": self.blocks, "decisions": self.decisions,
                "records": self.records, "full": self.checkpoint is None,
                "from_checkpoint": self.checkpoint, "notes": self.notes,
                "retired_blocks": self.retired, "archived_blocks": self.archived,
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


def verify(conn: Connection, *, stop_at_first: bool = False, progress=None,
           judge=None, since=None, apart: bool = False) -> VerifyReport:
    """Recompute every block from the stored decisions and the chain of roots.

    ``judge(conn, blocks, problems, seen_blocks, progress)`` recomputes the blocks' roots and
    returns how many decisions it read, or None to let this process do it (the default).
    :mod:`modelward.registry.parallel_verify` passes one that spreads the work over worker
    processes; the persistence layer itself spawns none.

    ``since``: a checkpoint already judged valid (:mod:`.checkpoints`; ``block``, ``root``,
    ``decisions``, ``rows``, ``number``): only the blocks after ``since.block`` are
    recomputed, from its root, plus the checks of "Verification from checkpoints" above.

    ``apart``: compare the rollups (:func:`_verify_rollups`) on another connection of the
    same engine, in a thread, while this one recomputes the chain. For a caller whose
    connection holds no uncommitted writes (a read transaction: the other connection sees
    only what is committed) on a file or server database; an in-memory SQLite database,
    which no other connection sees, is always compared here."""
    import time

    t0 = time.perf_counter()
    floor = since.block if since is not None else 0
    rollups_apart = None
    if apart:
        from .engine import in_memory_sqlite
        from .rollups import Apart

        if not in_memory_sqlite(conn.engine.url):  # no other connection sees that one
            rollups_apart = Apart(conn.engine, floor)
    try:
        return _verify(conn, t0, floor, rollups_apart, stop_at_first=stop_at_first,
                       progress=progress, judge=judge, since=since)
    finally:
        if rollups_apart is not None:
            rollups_apart.join()


def _verify(conn: Connection, t0: float, floor: int, rollups_apart, *, stop_at_first: bool,
            progress, judge, since) -> VerifyReport:
    import time

    c = chain_blocks.c
    query = sa.select(c.number, c.root, c.prev_root, c.count, c.records).order_by(c.number)
    blocks = conn.execute(query.where(c.number >= floor) if floor else query).all()
    problems: list[BlockProblem] = []
    expected_prev = GENESIS
    if floor:
        from .chain_since import anchor

        expected_prev, blocks = anchor(blocks, since, problems)
    by_number = {b.number: b for b in blocks}
    for i, b in enumerate(blocks, start=floor + 1):
        if b.number != i:
            problems.append(BlockProblem(i, f"block {i} is missing (next is {b.number})"))
            break
        if b.prev_root != expected_prev:
            problems.append(BlockProblem(b.number, "does not link to the previous block's root"))
        expected_prev = b.root

    seen_blocks: set[int] = set()
    total = judge(conn, blocks, problems, seen_blocks, progress) if judge and blocks else None
    if total is None:
        from . import chain_sqlite

        where, params = ("WHERE block > ?", (floor,)) if floor else ("", ())
        if conn.dialect.name == "sqlite" and chain_sqlite.SUPPORTED:  # SQLite writes the JSON
            with streamed(conn, chain_sqlite.select(where), params,
                          size=VERIFY_BATCH) as rows:
                total = chain_sqlite.judge_blocks(conn, rows, by_number, problems, seen_blocks,
                                                  stop_at_first=stop_at_first,
                                                  progress=progress)
        else:
            if conn.dialect.name != "sqlite":
                where = where.replace("?", "%s")
            with streamed(conn, _select_chained("", where), params,  # server-side on PG
                          size=VERIFY_BATCH) as rows:
                total = judge_blocks(rows, by_number, problems, seen_blocks,
                                     stop_at_first=stop_at_first, progress=progress)
    from .archives import archived as archived_blocks  # blocks moved to Parquet files
    from .retirement import retired_numbers  # retention's record of the blocks it dropped

    retired = retired_numbers(conn)
    moved = archived_blocks(conn)
    for b in blocks:
        if (b.number not in seen_blocks and b.count and b.number not in retired
                and b.number not in moved):
            problems.append(BlockProblem(b.number, f"all {b.count} decisions of the block are gone"))
    gone = [b for b in blocks if b.number in retired and b.number not in seen_blocks]
    retired_gone = len(gone)
    in_files = [b for b in blocks if b.number in moved and b.number not in retired
                and b.number not in seen_blocks]
    # a checkpoint counts the decisions its blocks sealed, whether still stored or retired by
    # retention (or archived) since: a later retirement leaves the count it signed unchanged
    retired_decisions = sum(b.count for b in gone) + sum(b.count for b in in_files)
    from .records import verify_records  # records build on this module's blocks
    from .records_since import row_counts, verify_records_since

    if since is None:
        records = verify_records(conn, blocks, problems, seen_blocks)
        rows = row_counts(conn)
    else:
        from .chain_since import count_before

        count_before(conn, since, problems)
        records, rows = verify_records_since(conn, blocks, problems, seen_blocks, since)
    _verify_rollups(conn, seen_blocks, problems, floor, rollups_apart)
    problems.sort(key=_block_order)
    head = blocks[-1].root if blocks else (since.root if since is not None else GENESIS)
    head_block = blocks[-1].number if blocks else floor
    return VerifyReport(ok=not problems, blocks=len(blocks), decisions=total, head_root=head,
                        problems=problems, seconds=time.perf_counter() - t0, records=records,
                        head_block=head_block, rows=rows, retired=retired_gone,
                        archived=len(in_files),
                        all_decisions=total + retired_decisions
                        + (since.decisions if since is not None else 0))


def _verify_rollups(conn: Connection, seen_blocks: set[int], problems: list[BlockProblem],
                    floor: int = 0, apart=None) -> None:
    """Rollups are not leaves: they are recomputed from the decisions of the blocks just
    verified (:mod:`.rollups`), and a block whose stored rollups differ is broken. From a
    checkpoint (``floor``: its block) only the blocks after it: a rollup the checkpoint
    covers is vouched for as the decisions are, and recomputed by a full verification.
    ``apart``: the comparison already running on a connection of its own
    (:class:`.rollups.Apart`), whose findings are taken instead."""
    from . import rollups

    broken = {p.block for p in problems if p.block is not None}
    if apart is not None:
        found_by_block = apart.result(broken)
    else:
        # no decisions read: any rollup after the floor is forged
        first = min(seen_blocks) if seen_blocks else floor + 1
        found_by_block = rollups.verify(conn, first, broken)
    for number, found in found_by_block:
        problems.append(BlockProblem(number, "its rollups do not match its decisions",
                                     records=found))


def links_into(conn: Connection, number: int) -> bool:
    """Whether block ``number`` links to the root of the block before it (or to genesis)."""
    rows = dict(conn.execute(sa.select(chain_blocks.c.number, chain_blocks.c.root).where(
        chain_blocks.c.number.in_([number, number - 1]))).all())
    prev = conn.execute(sa.select(chain_blocks.c.prev_root)
                        .where(chain_blocks.c.number == number)).scalar()
    if prev is None:
        return False
    return prev == (rows.get(number - 1) if number > 1 else GENESIS)


def links_forward(conn: Connection, number: int,
                  until: int | None = None) -> tuple[int, str | None]:
    """Whether every block after ``number`` links to the one before it, up to the newest
    (or up to block ``until``, one a signed checkpoint vouches for): (the last block
    walked, the first problem or None). A block re-sealed after an edit gets a new root,
    which the next block's ``prev_root`` does not name."""
    query = (sa.select(chain_blocks.c.number, chain_blocks.c.root, chain_blocks.c.prev_root)
             .where(chain_blocks.c.number >= number).order_by(chain_blocks.c.number))
    if until is not None:
        query = query.where(chain_blocks.c.number <= until)
    rows = conn.execute(query).all()
    if not rows or rows[0].number != number:
        return (rows[-1].number if rows else 0), f"block {number} is missing"
    for before, after in itertools.pairwise(rows):
        if after.number != before.number + 1:
            return rows[-1].number, f"block {before.number + 1} is missing"
        if after.prev_root != before.root:
            return rows[-1].number, (f"block {after.number} does not link to block "
                                     f"{before.number}'s root: a block up to it was rewritten")
    return rows[-1].number, None
