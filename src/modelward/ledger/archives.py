"""Archived decision blocks: sealed blocks moved to Parquet files, still provable.

``modelward archive`` (:mod:`modelward.registry.archive`) writes whole sealed decision blocks
to a Parquet file on a blob store, reads the file back and recomputes every block's root
from its rows, and only then, in one write transaction, records the file and deletes the
blocks' decisions (:func:`record_and_drop`). The records are chained (:mod:`.records`):

* ``archives`` — one row per file: the store URL, the file's sha256 (its blob key), its
  size, the blocks and decision count it holds, and ``refs`` (every artifact digest its
  decisions name, with how many and when first and last), so retention still counts those
  decisions as references (:func:`references`);
* ``archived_blocks`` — one row per block: the file (``archive``), the block's sealed root,
  its decision count and the range of its decision ids (how audit finds an archived
  decision without opening every file).

A file (:mod:`.parquet_blocks`) holds only the chained columns (:data:`.chain.CHAINED`) plus
``block`` and ``pos``,
exactly as stored, so a block's leaves and root recompute from the file's rows alone. Kept
decision text and subject keys are never copied: the text is erasable personal data and a
subject key is destroyed on erasure (an archive on object storage would keep both forever).
The text of archived decisions goes with them, as it does under retention.

:func:`.chain.verify` counts a block recorded here whose decisions are gone as *archived*,
not broken; the file itself is fetched and recomputed by ``verify --full``
(:func:`modelward.registry.archive.verify_files`). A block whose decisions are gone with no
record here (or in ``retired_blocks``) is still broken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import chain, partitions, records, rollups, scan
from .parquet_blocks import COLUMNS, FileCheck
from .retirement import _forget_ids, retired_numbers
from .schema import archived_blocks, archives, chain_blocks, decisions

SCAN_BATCH = 4096  # rows fetched from the database at once while a file is written


# ---- reading the ledger ----------------------------------------------------------------
def archived(conn: Connection) -> dict[int, int]:
    """Block number -> the archive (file) id holding it."""
    return dict(conn.execute(sa.select(archived_blocks.c.block, archived_blocks.c.archive)).all())


def candidates(conn: Connection, *, before: int, limit_decisions: int) -> list:
    """Sealed decision blocks whose decisions are all older than ``before``, not yet
    archived or retired, oldest first, up to about ``limit_decisions`` decisions (whole
    blocks; at least one)."""
    done = retired_numbers(conn) | set(archived(conn))
    c = chain_blocks.c
    out, total = [], 0
    for b in conn.execute(sa.select(c.number, c.root, c.prev_root, c.count, c.first_at, c.last_at)
                          .where(c.count > 0, c.last_at < before).order_by(c.number)):
        if b.number in done:
            continue
        if out and total + b.count > limit_decisions:
            break
        out.append(b)
        total += b.count
    return out


def rows_of(conn: Connection, blocks: list[int]) -> list[tuple]:
    """The stored decisions of ``blocks``, ``COLUMNS`` order, by block and position."""
    return [r for _, rows in iter_blocks(conn, blocks) for r in rows]


def iter_blocks(conn: Connection, blocks: list[int]) -> Iterator[tuple[int, list[tuple]]]:
    """(block, its stored decisions in position order) for ``blocks`` in ascending order,
    read through a streamed (on PostgreSQL server-side) cursor: one block at a time."""
    cols = ", ".join(COLUMNS)
    b = len(chain.CHAINED)
    numbers = sorted(int(n) for n in blocks)
    for i in range(0, len(numbers), 500):
        part = numbers[i:i + 500]
        listed = ", ".join(str(n) for n in part)
        done: set[int] = set()
        with scan.streamed(conn, f"SELECT {cols} FROM decisions WHERE block IN ({listed}) "
                                 "ORDER BY block, pos", size=SCAN_BATCH) as rows:
            current, held = None, []
            for r in rows:
                if r[b] != current:
                    if held:
                        done.add(current)
                        yield current, held
                    current, held = r[b], []
                held.append(tuple(r))
            if held:
                done.add(current)
                yield current, held
        for n in part:
            if n not in done:
                yield n, []


def references(conn: Connection, *, since: int | None) -> dict[str, list[int]]:
    """Digest -> [decisions, last, first] named by archived decisions, from the files whose
    newest decision is at or after ``since`` (whole files: a file's counts are not split)."""
    out: dict[str, list[int]] = {}
    q = sa.select(archives.c.refs, chain_blocks.c.last_at).join(
        chain_blocks, chain_blocks.c.number == archives.c.last_block)
    for refs, last_at in conn.execute(q):
        if since is not None and last_at < since:
            continue
        for d, (n, last, first) in orjson.loads(refs).items():
            if since is not None and last < since:
                continue
            ref = out.get(d)
            out[d] = [n, last, first] if ref is None else [
                ref[0] + n, max(ref[1], last), min(ref[2], first)]
    return out


def locate(conn: Connection, decision_id: str) -> list:
    """Archive rows (with ``block`` and ``first_at``, the time that names the file's month)
    whose blocks' id range covers ``decision_id``."""
    a, b = archives.c, archived_blocks.c
    first = chain_blocks.alias("first")
    return conn.execute(sa.select(a.id, a.url, a.digest, b.block, b.root, b.count,
                                  first.c.first_at)
                        .join(archived_blocks, b.archive == a.id)
                        .outerjoin(first, first.c.number == a.first_block)
                        .where(b.min_id <= decision_id, b.max_id >= decision_id)
                        .order_by(b.block)).all()


def sealed(conn: Connection, numbers: list[int]) -> dict:
    """Block number -> its chain_blocks row (number, root, prev_root, count)."""
    c = chain_blocks.c
    out = {}
    for i in range(0, len(numbers), 500):
        out.update({r.number: r for r in conn.execute(
            sa.select(c.number, c.root, c.prev_root, c.count)
            .where(c.number.in_(numbers[i:i + 500])))})
    return out


def files(conn: Connection) -> list:
    """The archive records, each with ``first_at`` (of its first block: the file's month)."""
    return conn.execute(sa.select(archives, chain_blocks.c.first_at)
                        .outerjoin(chain_blocks, chain_blocks.c.number == archives.c.first_block)
                        .order_by(archives.c.id)).all()


def blocks_of(conn: Connection, archive_id: int | None = None) -> list:
    q = sa.select(archived_blocks).order_by(archived_blocks.c.block)
    if archive_id is not None:
        q = q.where(archived_blocks.c.archive == archive_id)
    return conn.execute(q).all()


# ---- writing ----------------------------------------------------------------------------
@dataclass
class Dropped:
    archive_id: int
    blocks: list[int]
    decisions: int
    partitions: list[str] = field(default_factory=list)


def record_and_drop(conn: Connection, *, url: str, digest: str, size: int, blocks: list,
                    proof: FileCheck, before: int, now: int, crash=None) -> Dropped:
    """In the caller's write transaction: record the (already written and checked) file
    and its blocks, chained, then delete the blocks' decisions and rollups. ``blocks``:
    chain_blocks rows. Refuses blocks already archived or retired, or whose stored
    decisions no longer number what the file holds. ``proof``: the read-back of the file
    (:func:`check_file`), which proved every block."""
    from ..errors import ConflictError

    numbers = [b.number for b in blocks]
    taken = (retired_numbers(conn) | set(archived(conn))) & set(numbers)
    if taken:
        raise ConflictError(f"blocks {sorted(taken)[:10]} are already archived or retired")
    unproven = [n for n in numbers if n not in proof.proven]
    if unproven or proof.problems or proof.extra:
        raise ConflictError(f"the archive file does not prove blocks "
                            f"{sorted(set(unproven) | set(proof.problems))[:10]}")
    new_id = conn.execute(archives.insert().values(
        at=now, before_at=before, url=url, digest=digest, bytes=size,
        first_block=min(numbers), last_block=max(numbers), decisions=proof.decisions,
        refs=orjson.dumps(proof.refs, option=orjson.OPT_SORT_KEYS).decode(),
    )).inserted_primary_key[0]
    rows = [{"block": b.number, "archive": new_id, "root": b.root, "count": b.count,
             "min_id": proof.proven[b.number][1], "max_id": proof.proven[b.number][2]}
            for b in blocks]
    for i in range(0, len(rows), 1000):
        conn.execute(archived_blocks.insert(), rows[i:i + 1000])
    records.record(conn, "archives", [new_id])
    records.record(conn, "archived_blocks", numbers)
    if crash:
        crash("recorded")
    out = Dropped(int(new_id), numbers, proof.decisions)
    _delete(conn, numbers, out)
    if crash:
        crash("deleted")
    return out


def _delete(conn: Connection, numbers: list[int], out: Dropped) -> None:
    """Delete the decisions (their ids and kept text) of ``numbers``: whole PostgreSQL
    month partitions that hold nothing else, then rows; their rollups go too."""
    wanted = set(numbers)
    counts = {}
    for i in range(0, len(numbers), 500):
        part = numbers[i:i + 500]
        counts.update(conn.execute(
            sa.select(decisions.c.block, sa.func.count()).where(decisions.c.block.in_(part))
            .group_by(decisions.c.block)).all())
    expected = {b: c for b, c in conn.execute(
        sa.select(chain_blocks.c.number, chain_blocks.c.count)
        .where(chain_blocks.c.number.in_(numbers))).all()}
    if counts != expected:
        from ..errors import ConflictError

        raise ConflictError("the stored decisions of the blocks changed while they were "
                            "archived; nothing was deleted")
    if conn.dialect.name == "postgresql" and partitions.has_partitions(conn):
        for name in partitions.existing(conn):
            held = set(conn.exec_driver_sql(f"SELECT DISTINCT block FROM {name}").scalars())
            if not held or not held <= wanted:
                continue
            _forget_ids(conn, name)
            conn.exec_driver_sql(f"ALTER TABLE decisions DETACH PARTITION {name}")
            conn.exec_driver_sql(f"DROP TABLE {name}")
            out.partitions.append(name)
    for i in range(0, len(numbers), 500):
        part = numbers[i:i + 500]
        listed = ", ".join(str(int(n)) for n in part)
        _forget_ids(conn, f"decisions WHERE block IN ({listed})")
        conn.execute(decisions.delete().where(decisions.c.block.in_(part)))
    rollups.refresh(conn, numbers)
