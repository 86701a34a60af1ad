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

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import check_digest
from . import chain, partitions, records, rollups, scan
from .decisions import DIGEST_FIELDS
from .retirement import _forget_ids, retired_numbers
from .schema import archived_blocks, archives, chain_blocks, decisions

# Parquet columns: the chained ones in leaf order, then the block and position.
COLUMNS = (*chain.CHAINED, "block", "pos")
_INTS = {"at", "gate_candidates", "gate_passed", "recorded_at", "block", "pos"}
_FLOATS = {"gate_threshold"}
ROW_GROUP = 65_536  # rows a row group: ~6 MB of Parquet, ~45 MB of Arrow while written


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
    """A Parquet file of ``rows`` (``COLUMNS`` order, sorted by block and pos), in memory
    (tests and small tools; ``modelward archive`` streams through :class:`FileWriter`)."""
    buf = io.BytesIO()
    w = FileWriter(buf)
    w.add(rows)
    w.close()
    return buf.getvalue()


def month_of(at_us: int) -> str:
    """``YYYY-MM`` (UTC) of a time: the ``month=`` partition of an archive file."""
    y, m = partitions.month_of(at_us)
    return f"{y:04d}-{m:02d}"


def file_key(month: str, digest: str) -> str:
    """Where an archive file lives under its store URL, Hive-style by month and named by
    its content: ``decisions/month=2026-03/<sha256 hex>.parquet``."""
    check_digest(digest)
    if len(month) != 7 or not (month[:4].isdigit() and month[4] == "-" and month[5:].isdigit()):
        raise ValueError(f"not a month: {month!r}")
    return f"decisions/month={month}/{digest[7:]}.parquet"


class _HashingSink:
    """A write-only file for pyarrow that hashes and counts the bytes on their way to
    ``out``: the file's sha256 is known the moment the writer closes."""

    def __init__(self, out) -> None:
        self._out = out
        self.sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data) -> int:
        if self.closed:  # an aborted writer flushing on its way out
            return len(data)
        data = bytes(data)
        self.sha.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._out.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


class FileWriter:
    """An archive file written a row group at a time: :meth:`add` takes whole blocks'
    rows (``COLUMNS`` order), converted to Arrow at once; a row group is written when
    ``row_group`` rows are pending, so memory holds one row group, never the file."""

    def __init__(self, out, *, row_group: int = ROW_GROUP) -> None:
        _pyarrow()
        import pyarrow.parquet as pq

        self.sink = _HashingSink(out)
        self.schema = arrow_schema()
        self._writer = pq.ParquetWriter(self.sink, self.schema, compression="zstd",
                                        use_dictionary=True, write_statistics=True)
        self._pending: list = []
        self._rows = 0
        self.row_group = row_group
        self.row_groups = 0
        self.decisions = 0

    def add(self, rows: list[tuple]) -> None:
        import pyarrow as pa

        if not rows:
            return
        cols = list(zip(*rows, strict=True))
        self._pending.append(pa.record_batch(
            [pa.array(v, type=self.schema.field(i).type) for i, v in enumerate(cols)],
            schema=self.schema))
        self._rows += len(rows)
        self.decisions += len(rows)
        if self._rows >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema),
                                     row_group_size=max(self._rows, 1))
            self.row_groups += 1
        self._pending, self._rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self.sink.flush()

    def abort(self) -> None:
        """Stop writing (the file is discarded by the caller); nothing more reaches it."""
        self.sink.closed = True
        self._pending = []
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001, S110 - the file is being thrown away
            pass


READ_BATCH = 8192  # rows decoded to Python at once when a file is read back
SCAN_BATCH = 4096  # rows fetched from the database at once while a file is written


def read_blocks(fh, *, only: int | None = None) -> Iterator[tuple[int, list[tuple]]]:
    """(block, its rows in file order) of an archive file (a readable binary file), a row
    group at a time (:data:`READ_BATCH` rows of it at once, plus one block). A block
    whose rows are not contiguous comes out more than once (callers count that as a
    problem). ``only``: skip row groups whose statistics say they hold no row of that
    block. Raises ValueError when the file is not an archive."""
    _pyarrow()
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise ValueError(f"not a readable Parquet file: {_first(exc)}") from None
    if pf.schema_arrow.names != list(COLUMNS) or not pf.schema_arrow.equals(
            arrow_schema(), check_metadata=False):
        raise ValueError("its columns are not an archive's")
    b = len(chain.CHAINED)
    current: int | None = None
    rows: list[tuple] = []
    groups = []
    for i in range(pf.num_row_groups):
        if only is not None:
            stats = pf.metadata.row_group(i).column(b).statistics
            if stats is not None and stats.has_min_max and not stats.min <= only <= stats.max:
                continue
        groups.append(i)
    # one row group at a time: a reader over all of them reads ahead (~the whole file)
    batches = (batch for i in groups
               for batch in pf.iter_batches(batch_size=READ_BATCH, row_groups=[i]))
    while True:
        try:
            batch = next(batches, None)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds
            raise ValueError(f"a row group is unreadable: {_first(exc)}") from None
        if batch is None:
            break
        cols = [batch.column(c).to_pylist() for c in COLUMNS]
        del batch
        for r in zip(*cols, strict=True):
            if r[b] != current:
                if rows:
                    yield current, rows
                current, rows = r[b], []
            rows.append(r)
    if rows:
        yield current, rows


def _first(exc: Exception) -> str:
    return (str(exc).splitlines() or [exc.__class__.__name__])[0][:200]


def decode(data: bytes) -> list[tuple]:
    """The rows of an archive file held in memory, ``COLUMNS`` order; raises ValueError
    when the file is not one (wrong columns or types)."""
    return [r for _, rows in read_blocks(io.BytesIO(data)) for r in rows]


def by_block(rows: list[tuple]) -> dict[int, list[tuple]]:
    """Rows grouped by block, each in position order."""
    out: dict[int, list[tuple]] = {}
    b, p = len(chain.CHAINED), len(chain.CHAINED) + 1
    for r in rows:
        out.setdefault(r[b], []).append(r)
    for group in out.values():
        group.sort(key=lambda r: r[p])
    return out


@dataclass
class FileCheck:
    """What reading an archive file block by block proved: per proven block its count
    and id range, the digests its decisions name (:func:`refs_of`), and per block why it
    is not proven; ``extra``: blocks the file holds that it should not."""

    proven: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    extra: list[int] = field(default_factory=list)
    refs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def decisions(self) -> int:
        return sum(c for c, _, _ in self.proven.values())


def check_file(fh, sealed: dict) -> FileCheck:
    """Read an archive file (already hash-checked) row group by row group and recompute
    each block's leaves and root against ``sealed`` (block -> chain_blocks row)."""
    out = FileCheck()
    seen: set[int] = set()
    for number, rows in read_blocks(fh):
        if number in seen:
            out.problems[number] = "its rows are not contiguous in the file"
            out.proven.pop(number, None)
            continue
        seen.add(number)
        s = sealed.get(number)
        if s is None:
            out.extra.append(number)
            continue
        rows.sort(key=lambda r: r[-1])
        problem = block_problem(rows, s)
        if problem:
            out.problems[number] = problem
            continue
        out.proven[number] = (len(rows), min(r[0] for r in rows), max(r[0] for r in rows))
        merge_refs(out.refs, refs_of(rows))
    for number, s in sealed.items():
        if number not in seen:
            out.problems[number] = f"holds 0 decisions, sealed with {s.count}"
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


def merge_refs(into: dict[str, list[int]], more: dict[str, list[int]]) -> None:
    for d, (n, last, first) in more.items():
        ref = into.get(d)
        into[d] = [n, last, first] if ref is None else [
            ref[0] + n, max(ref[1], last), min(ref[2], first)]


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
