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

A file holds only the chained columns (:data:`.chain.CHAINED`) plus ``block`` and ``pos``,
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

import io
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import chain, partitions, records, rollups
from .decisions import DIGEST_FIELDS
from .retirement import _forget_ids, retired_numbers
from .schema import archived_blocks, archives, chain_blocks, decisions

# Parquet columns: the chained ones in leaf order, then the block and position.
COLUMNS = (*chain.CHAINED, "block", "pos")
_INTS = {"at", "gate_candidates", "gate_passed", "recorded_at", "block", "pos"}
_FLOATS = {"gate_threshold"}
ROW_GROUP = 131_072


def arrow_schema():
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c in _INTS else pa.float64() if c in _FLOATS
                       else pa.string()) for c in COLUMNS],
                     metadata={b"modelward": b"archive/1"})


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        from ..errors import ConfigError

        raise ConfigError("archiving needs the pyarrow package",
                          hint="pip install 'modelward[archive]'") from None


def encode(rows: list[tuple]) -> bytes:
    """A Parquet file of ``rows`` (``COLUMNS`` order, sorted by block and pos)."""
    _pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    table = pa.table([pa.array(list(v), type=schema.field(i).type) for i, v in enumerate(cols)],
                     schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=ROW_GROUP,
                   use_dictionary=True, write_statistics=True)
    return buf.getvalue()


def decode(data: bytes) -> list[tuple]:
    """The rows of an archive file, ``COLUMNS`` order; raises ValueError when the file is
    not one (wrong columns or types)."""
    _pyarrow()
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise ValueError(f"not a readable Parquet file: {str(exc).splitlines()[0][:200]}") \
            from None
    if table.schema.names != list(COLUMNS) or not table.schema.equals(
            arrow_schema(), check_metadata=False):
        raise ValueError("its columns are not an archive's")
    cols = [table.column(c).to_pylist() for c in COLUMNS]
    return list(zip(*cols, strict=True))


def by_block(rows: list[tuple]) -> dict[int, list[tuple]]:
    """Rows grouped by block, each in position order."""
    out: dict[int, list[tuple]] = {}
    b, p = len(chain.CHAINED), len(chain.CHAINED) + 1
    for r in rows:
        out.setdefault(r[b], []).append(r)
    for group in out.values():
        group.sort(key=lambda r: r[p])
    return out


def block_problem(rows: list[tuple], sealed) -> str | None:
    """Why ``rows`` (one block's, ``COLUMNS`` order) are not the block ``sealed`` (a
    chain_blocks row: root, prev_root, count), or None."""
    if len(rows) != sealed.count:
        return f"holds {len(rows)} decisions, sealed with {sealed.count}"
    if [r[-1] for r in rows] != list(range(len(rows))):
        return "positions are not 0..n-1"
    if chain.block_root(sealed.prev_root, chain.leaves(rows)) != sealed.root:
        return "decisions do not match the sealed root"
    return None


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
    cols = ", ".join(COLUMNS)
    out: list[tuple] = []
    for i in range(0, len(blocks), 500):
        listed = ", ".join(str(int(n)) for n in blocks[i:i + 500])
        out.extend(tuple(r) for r in conn.exec_driver_sql(
            f"SELECT {cols} FROM decisions WHERE block IN ({listed}) ORDER BY block, pos"))
    return out


def refs_of(rows: list[tuple]) -> dict[str, list[int]]:
    """Digest -> [decisions, last at, first at] over ``rows``."""
    at = chain.CHAINED.index("at")
    at_fields = [chain.CHAINED.index(f) for f in DIGEST_FIELDS]
    out: dict[str, list[int]] = {}
    for r in rows:
        for d in {r[i] for i in at_fields} - {None}:
            ref = out.get(d)
            if ref is None:
                out[d] = [1, r[at], r[at]]
            else:
                ref[0] += 1
                ref[1] = max(ref[1], r[at])
                ref[2] = min(ref[2], r[at])
    return out


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
    """Archive rows (with ``block``) whose blocks' id range covers ``decision_id``."""
    a, b = archives.c, archived_blocks.c
    return conn.execute(sa.select(a.id, a.url, a.digest, b.block, b.root, b.count)
                        .join(archived_blocks, b.archive == a.id)
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
    return conn.execute(sa.select(archives).order_by(archives.c.id)).all()


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
                    rows_by_block: dict[int, list[tuple]], before: int, now: int,
                    crash=None) -> Dropped:
    """In the caller's write transaction: record the (already written and checked) file
    and its blocks, chained, then delete the blocks' decisions and rollups. ``blocks``:
    chain_blocks rows. Refuses blocks already archived or retired, or whose stored
    decisions no longer number what the file holds."""
    from ..errors import ConflictError

    numbers = [b.number for b in blocks]
    taken = (retired_numbers(conn) | set(archived(conn))) & set(numbers)
    if taken:
        raise ConflictError(f"blocks {sorted(taken)[:10]} are already archived or retired")
    all_rows = [r for n in numbers for r in rows_by_block[n]]
    new_id = conn.execute(archives.insert().values(
        at=now, before_at=before, url=url, digest=digest, bytes=size,
        first_block=min(numbers), last_block=max(numbers), decisions=len(all_rows),
        refs=orjson.dumps(refs_of(all_rows), option=orjson.OPT_SORT_KEYS).decode(),
    )).inserted_primary_key[0]
    rows = [{"block": b.number, "archive": new_id, "root": b.root, "count": b.count,
             "min_id": min(r[0] for r in rows_by_block[b.number]),
             "max_id": max(r[0] for r in rows_by_block[b.number])} for b in blocks]
    for i in range(0, len(rows), 1000):
        conn.execute(archived_blocks.insert(), rows[i:i + 1000])
    records.record(conn, "archives", [new_id])
    records.record(conn, "archived_blocks", numbers)
    if crash:
        crash("recorded")
    out = Dropped(int(new_id), numbers, len(all_rows))
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
