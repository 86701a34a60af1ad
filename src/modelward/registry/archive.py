"""``modelward archive``: sealed decision blocks to Parquet on a blob store, still provable.

Order, so a crash anywhere leaves either the decisions in the database or a recorded,
checked file, never neither:

1. pick whole sealed blocks whose decisions are all older than the cut-off, up to
   ``max_file_decisions`` a file and all of one month (the UTC month of each block's
   earliest decision: a block straddling a month boundary goes with its first month);
2. stream their rows (a server-side cursor on PostgreSQL), one block at a time:
   recompute the block's root (a block that does not verify is refused: it would archive
   a tampered state) and add it to the Parquet file, written a row group at a time to a
   temporary file and hashed while written;
3. put the file on the store at ``decisions/month=YYYY-MM/<sha256>.parquet``, fetch it
   back, check its sha256 and recompute every block's leaves and root from its rows, a
   row group at a time, against the sealed root;
4. in one write transaction: record the file and its blocks (chained) and delete the
   blocks' decisions and rollups (:func:`modelward.ledger.archives.record_and_drop`).

Memory holds one row group and one block, not the file. A crash after 3 leaves an
unreferenced file (the next run writes the same bytes again); a crash inside 4 rolls
back. :func:`verify_files` (``verify --full``) fetches every recorded file and recomputes
its blocks; :func:`find` is how audit proves an archived decision.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BlobCorruptError, ModelwardError, NotFoundError, ValidationError
from ..ledger import archives as ledger_archives
from ..ledger import chain as ledger_chain
from ..ledger import parquet_blocks as ledger_parquet
from ..ledger.blobs import open_blob_store
from ..ledger.decisions import Decision
from ..settings import is_remote
from ..timefmt import now_us, parse_duration

MAX_FILE_DECISIONS = 1_000_000  # per file; memory no longer grows with it
_SCHEMES = ("s3://", "gs://", "az://", "abfs://", "abfss://", "file://")


def check_url(url: object) -> str:
    """The canonical store URL for ``--to``: an object-store URL, or a local directory
    (made absolute, as ``file://…``). Hostile or ambiguous values are refused."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("--to needs a blob store URL", field="to",
                              hint="e.g. s3://bucket/modelward-archive or /srv/archive")
    url = url.strip()
    if len(url) > 900 or any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValidationError("--to is too long or holds control characters", field="to")
    if "?" in url or "#" in url:
        raise ValidationError("--to must not carry a query or fragment (credentials come "
                              "from the environment)", field="to")
    lowered = url.lower()
    if "://" in url and not lowered.startswith(_SCHEMES):
        raise ValidationError(f"--to {url.split('://', 1)[0]!r}: not a supported store "
                              "scheme", field="to", hint="s3://, gs://, az://, file:// or a "
                              "directory")
    if is_remote(url):
        bucket = url.split("://", 1)[1].split("/", 1)[0]
        if not bucket or "@" in bucket:
            raise ValidationError("--to names no bucket (or carries credentials)", field="to")
        return url.rstrip("/")
    path = url[len("file://"):] if lowered.startswith("file://") else url
    if not path:
        raise ValidationError("--to names no directory", field="to")
    return "file://" + str(Path(path).expanduser().resolve())


def open_store(url: str):
    """The blob store an archive record names (an object store caches nothing here)."""
    cache = Path(tempfile.gettempdir()) / f"modelward-archive-{os.getuid()}"
    return open_blob_store(url, cache_dir=cache)


def file_url(url: str, month: str, digest: str) -> str:
    return f"{url}/{ledger_parquet.file_key(month, digest)}"


def month_of_record(first_at: int | None) -> str | None:
    """The month partition of a recorded file, from its first block's earliest decision."""
    return None if first_at is None else ledger_parquet.month_of(first_at)


@dataclass
class ArchiveFile:
    url: str
    digest: str
    bytes: int
    blocks: list[int]
    decisions: int
    archive_id: int | None = None
    partitions: list[str] = field(default_factory=list)
    month: str = ""
    row_groups: int = 0

    @property
    def key(self) -> str:
        return ledger_parquet.file_key(self.month, self.digest)

    def to_dict(self) -> dict:
        return {"file": file_url(self.url, self.month, self.digest), "month": self.month,
                "sha256": self.digest, "row_groups": self.row_groups,
                "bytes": self.bytes, "first_block": min(self.blocks),
                "last_block": max(self.blocks), "blocks": len(self.blocks),
                "decisions": self.decisions, "archive_id": self.archive_id,
                "partitions_dropped": self.partitions,
                "bytes_per_decision": round(self.bytes / self.decisions, 1)
                if self.decisions else None}


@dataclass
class ArchiveReport:
    before: int
    url: str
    dry_run: bool
    files: list[ArchiveFile] = field(default_factory=list)
    would_blocks: int = 0
    would_decisions: int = 0

    @property
    def decisions(self) -> int:
        return sum(f.decisions for f in self.files) if not self.dry_run else self.would_decisions

    def to_dict(self) -> dict:
        return {"before": self.before, "to": self.url, "dry_run": self.dry_run,
                "decisions": self.decisions,
                "blocks": (sum(len(f.blocks) for f in self.files) if not self.dry_run
                           else self.would_blocks),
                "files": [f.to_dict() for f in self.files]}


def _one_month(blocks: list) -> list:
    """The leading blocks of ``blocks`` whose earliest decision falls in the same UTC month
    as the first's: a file never spans months."""
    month = ledger_parquet.month_of(blocks[0].first_at)
    out = []
    for b in blocks:
        if ledger_parquet.month_of(b.first_at) != month:
            break
        out.append(b)
    return out


def _write(store, blocks: list, fh, *, row_group: int) -> ledger_parquet.FileWriter:
    """Stream the blocks' stored rows into a Parquet file on ``fh``, checking each block's
    root first; refuses (nothing written to the store) a block that does not verify."""
    sealed = {b.number: b for b in blocks}
    writer = ledger_parquet.FileWriter(fh, row_group=row_group)
    try:
        with store.read() as conn:
            for number, rows in ledger_archives.iter_blocks(conn, list(sealed)):
                problem = ledger_parquet.block_problem(rows, sealed[number])
                if problem:
                    raise ModelwardError(f"refusing to archive: the stored decisions of "
                                         f"block {number}: {problem}",
                                         hint="run `modelward verify --full`")
                writer.add(rows)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return writer


def archive(store, *, older_than: object, to: object, dry_run: bool = False,
            now: int | None = None, max_decisions: int = MAX_FILE_DECISIONS,
            row_group: int = ledger_parquet.ROW_GROUP, crash=None) -> ArchiveReport:
    """Move every sealed decision block older than ``older_than`` to Parquet files on the
    blob store at ``to`` (at most ``max_decisions`` a file, whole blocks, one month a
    file). ``crash(stage)`` is a test hook called after each step."""
    age = parse_duration(older_than, field="older_than")
    if age <= 0:
        raise ValidationError("--older-than must be positive", field="older_than")
    url = check_url(to)
    if isinstance(max_decisions, bool) or not isinstance(max_decisions, int) \
            or max_decisions < 1:
        raise ValidationError("--max-file-decisions must be a positive integer",
                              field="max_file_decisions")
    now = now_us() if now is None else now
    before = now - age
    report = ArchiveReport(before, url, dry_run)
    if dry_run:
        with store.read() as conn:
            blocks = ledger_archives.candidates(conn, before=before, limit_decisions=1 << 62)
        report.would_blocks = len(blocks)
        report.would_decisions = sum(b.count for b in blocks)
        return report
    target = open_store(url)
    while True:
        with store.read() as conn:
            blocks = ledger_archives.candidates(conn, before=before,
                                                limit_decisions=max_decisions)
        if not blocks:
            return report
        blocks = _one_month(blocks)
        month = ledger_parquet.month_of(blocks[0].first_at)
        fd, name = tempfile.mkstemp(dir=target.scratch_dir(), suffix=".parquet")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                writer = _write(store, blocks, fh, row_group=row_group)
                fh.flush()
                os.fsync(fh.fileno())
            digest, size = writer.sink.digest, writer.sink.size
            key = ledger_parquet.file_key(month, digest)
            target.put_file_at(key, tmp, move=not target.remote)
        finally:
            tmp.unlink(missing_ok=True)
        if crash:
            crash("written")
        sealed = {b.number: b for b in blocks}
        proof, why = _prove(target, url, month, digest, sealed)
        if why is None and (proof.problems or proof.extra):
            n, problem = (next(iter(sorted(proof.problems.items()))) if proof.problems
                          else (proof.extra[0], "is not one it should hold"))
            why = f"block {n}: {problem}"
        if why is not None:
            raise ModelwardError(f"the archive file {file_url(url, month, digest)} read back "
                                 f"does not prove {why}; nothing was deleted")
        if crash:
            crash("checked")
        with store.write() as conn:
            dropped = ledger_archives.record_and_drop(
                conn, url=url, digest=digest, size=size, blocks=blocks, proof=proof,
                before=before, now=now, crash=crash)
        report.files.append(ArchiveFile(url, digest, size, dropped.blocks,
                                        dropped.decisions, dropped.archive_id,
                                        dropped.partitions, month, writer.row_groups))


# ---- proving archived decisions ---------------------------------------------------------
@contextlib.contextmanager
def _opened(target, url: str, month: str, digest: str):
    """The archive file, open and checked against ``digest`` (read through once, hashing);
    raises NotFoundError / BlobCorruptError."""
    with target.open_at(ledger_parquet.file_key(month, digest)) as fh:
        h = hashlib.sha256()
        while data := fh.read(1 << 20):
            h.update(data)
        if "sha256:" + h.hexdigest() != digest:
            raise BlobCorruptError(f"{file_url(url, month, digest)} hashes to "
                                   f"sha256:{h.hexdigest()}")
        fh.seek(0)
        yield fh


def _why(exc: Exception, where: str) -> str:
    if isinstance(exc, NotFoundError):
        return f"archive file {where} is missing"
    if isinstance(exc, BlobCorruptError):
        return f"archive file {where} was altered (its bytes no longer hash to its name)"
    if isinstance(exc, ValueError):
        return f"archive file {where} is not an archive: {exc}"
    return f"archive file {where} cannot be read: {exc}"


def _prove(target, url: str, month: str | None, digest: str,
           sealed: dict) -> tuple[ledger_parquet.FileCheck, str | None]:
    """(what the file proves of ``sealed``, None) or (an empty check, why it cannot be
    read): fetched, hash-checked, then read a row group at a time."""
    if month is None:
        return ledger_parquet.FileCheck(), "its first block has no sealed block (no month)"
    where = file_url(url, month, digest)
    try:
        with _opened(target, url, month, digest) as fh:
            return ledger_parquet.check_file(fh, sealed), None
    except (ModelwardError, ValueError) as exc:
        return ledger_parquet.FileCheck(), _why(exc, where)


def verify_files(conn) -> list[ledger_chain.BlockProblem]:
    """Fetch every recorded archive file, check its sha256, recompute each of its blocks'
    leaves and root from its rows (a row group at a time) and compare them with the sealed
    block (and the root the archive record kept). One problem per unprovable block."""
    problems: list[ledger_chain.BlockProblem] = []
    files = {f.id: f for f in ledger_archives.files(conn)}
    by_file: dict[int, list] = {}
    for b in ledger_archives.blocks_of(conn):
        by_file.setdefault(b.archive, []).append(b)
    for archive_id, blocks in by_file.items():
        f = files.get(archive_id)
        if f is None:
            for b in blocks:
                problems.append(ledger_chain.BlockProblem(
                    b.block, f"archived in archive {archive_id}, which has no record: "
                    "its decisions are unprovable"))
            continue
        numbers = [b.block for b in blocks]
        sealed = ledger_archives.sealed(conn, numbers)
        month = month_of_record(f.first_at)
        proof, why = _prove(open_store(f.url), f.url, month, f.digest, sealed)
        where = file_url(f.url, month, f.digest) if month else f.url
        for b in blocks:
            s = sealed.get(b.block)
            if why is not None:
                problem = why
            elif s is None:
                problem = "the archived block has no sealed block"
            elif s.root != b.root:
                problem = "the archive record names another root than the sealed block's"
            elif b.block in proof.problems:
                problem = f"archive file {where}: {proof.problems[b.block]}"
            else:
                problem = None
            if problem:
                problems.append(ledger_chain.BlockProblem(
                    b.block, f"{problem}; the block's decisions are unprovable"))
        if why is None and proof.extra:
            extra = sorted(proof.extra)
            problems.append(ledger_chain.BlockProblem(
                extra[0], f"archive file {where} holds blocks its record "
                f"does not name ({extra[:10]})"))
    return problems


@dataclass
class Found:
    """An archived decision and how its block was proven from the file."""

    decision: Decision
    file: str
    verifies: bool
    problem: str | None


def find(conn, decision_id: str) -> Found | None:
    """The archived decision ``decision_id`` read from its file (only the row groups that
    may hold its block), its block recomputed against the sealed root; None when no
    archive record covers it."""
    n = len(ledger_chain.CHAINED)
    for hit in ledger_archives.locate(conn, decision_id):
        month = month_of_record(hit.first_at)
        where = file_url(hit.url, month, hit.digest) if month else hit.url
        block_rows: list[tuple] = []
        try:
            if month is None:
                raise ValueError("its first block has no sealed block (no month)")
            with _opened(open_store(hit.url), hit.url, month, hit.digest) as fh:
                for number, rows in ledger_parquet.read_blocks(fh, only=hit.block):
                    if number == hit.block:
                        block_rows.extend(rows)
        except (ModelwardError, ValueError) as exc:
            return Found(_stub(decision_id, hit.block), where, False, _why(exc, where))
        mine = [r for r in block_rows if r[0] == decision_id]
        if not mine:
            continue
        block_rows.sort(key=lambda r: r[-1])
        sealed = ledger_archives.sealed(conn, [hit.block]).get(hit.block)
        problem = ("the archived block has no sealed block" if sealed is None
                   else ledger_parquet.block_problem(block_rows, sealed))
        r = mine[0]
        values = dict(zip(ledger_chain.CHAINED, r[:n], strict=True))
        values.update(block=r[n], pos=r[n + 1])
        d = Decision.from_row(_Mapped(values))
        return Found(d, where, problem is None, problem)
    return None


class _Mapped:
    def __init__(self, m: dict) -> None:
        self._mapping = m


def _stub(decision_id: str, block: int) -> Decision:
    fields = {c: None for c in ledger_chain.CHAINED}
    fields.update(id=decision_id, at=0, recorded_at=0, block=block, pos=0)
    return Decision.from_row(_Mapped(fields))
