"""The Parquet files of archived decision blocks (:mod:`.archives`): their columns, the
writer that streams blocks into row groups while hashing the bytes, the month layout of
their keys, and the reader that regroups a file's rows by block and recomputes each block's
leaves and root against its sealed chain block.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..digest import check_digest
from . import chain, partitions
from .decision_fields import DIGEST_FIELDS

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
