"""``modelward archive``: sealed decision blocks to Parquet on a blob store, still provable.

Order, so a crash anywhere leaves either the decisions in the database or a recorded,
checked file, never neither:

1. pick whole sealed blocks whose decisions are all older than the cut-off (up to
   ``max_decisions`` a file), read their rows and recompute each block's root from them
   (a block that does not verify is refused: it would archive a tampered state);
2. write them to a Parquet file, put it on the store under its sha256 (a PUT is whole or
   absent), fetch it back (the store re-hashes it), decode it and recompute every block's
   leaves and root from the file's rows against the sealed root;
3. in one write transaction: record the file and its blocks (chained) and delete the
   blocks' decisions and rollups (:func:`modelward.ledger.archives.record_and_drop`).

A crash after 2 leaves an unreferenced file (the next run writes the same bytes again);
a crash inside 3 rolls back. :func:`verify_files` (``verify --full``) fetches every
recorded file and recomputes its blocks; :func:`find` is how audit proves an archived
decision.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BlobCorruptError, ModelwardError, NotFoundError, ValidationError
from ..ledger import archives as ledger_archives
from ..ledger import chain as ledger_chain
from ..ledger.blobs import blob_key, open_blob_store
from ..ledger.decisions import Decision
from ..settings import is_remote
from ..timefmt import now_us, parse_duration

MAX_DECISIONS = 100_000  # per file: the rows, the file and its read-back are held in memory
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


def file_url(url: str, digest: str) -> str:
    return f"{url}/{blob_key(digest)}"


@dataclass
class ArchiveFile:
    url: str
    digest: str
    bytes: int
    blocks: list[int]
    decisions: int
    archive_id: int | None = None
    partitions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"file": file_url(self.url, self.digest), "sha256": self.digest,
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


def _check_rows(rows_by_block: dict, blocks: list) -> str | None:
    for b in blocks:
        problem = ledger_archives.block_problem(rows_by_block.get(b.number, []), b)
        if problem:
            return f"block {b.number}: {problem}"
    if set(rows_by_block) != {b.number for b in blocks}:
        return "holds blocks it should not"
    return None


def archive(store, *, older_than: object, to: object, dry_run: bool = False,
            now: int | None = None, max_decisions: int = MAX_DECISIONS,
            crash=None) -> ArchiveReport:
    """Move every sealed decision block older than ``older_than`` to Parquet files on the
    blob store at ``to``. ``crash(stage)`` is a test hook called after each step."""
    age = parse_duration(older_than, field="older_than")
    if age <= 0:
        raise ValidationError("--older-than must be positive", field="older_than")
    url = check_url(to)
    if not isinstance(max_decisions, int) or max_decisions < 1:
        raise ValidationError("max_decisions must be a positive integer", field="max_decisions")
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
            rows = ledger_archives.rows_of(conn, [b.number for b in blocks])
        stored = ledger_archives.by_block(rows)
        problem = _check_rows(stored, blocks)
        if problem:
            raise ModelwardError(f"refusing to archive: the stored decisions of {problem}",
                                 hint="run `modelward verify --full`")
        data = ledger_archives.encode(rows)
        del rows
        digest = target.put_bytes(data)
        if crash:
            crash("written")
        back = ledger_archives.by_block(ledger_archives.decode(target.get(digest)))
        problem = _check_rows(back, blocks)
        if problem:
            raise ModelwardError(f"the archive file {file_url(url, digest)} read back does "
                                 f"not prove {problem}; nothing was deleted")
        if crash:
            crash("checked")
        with store.write() as conn:
            dropped = ledger_archives.record_and_drop(
                conn, url=url, digest=digest, size=len(data), blocks=blocks,
                rows_by_block=back, before=before, now=now, crash=crash)
        report.files.append(ArchiveFile(url, digest, len(data), dropped.blocks,
                                        dropped.decisions, dropped.archive_id,
                                        dropped.partitions))


# ---- proving archived decisions ---------------------------------------------------------
def _fetch(url: str, digest: str) -> tuple[dict | None, str | None]:
    """(rows by block, None) of the file, or (None, why it cannot be read)."""
    where = file_url(url, digest)
    try:
        data = open_store(url).get(digest)
    except NotFoundError:
        return None, f"archive file {where} is missing"
    except BlobCorruptError:
        return None, f"archive file {where} was altered (its bytes no longer hash to its name)"
    except ModelwardError as exc:
        return None, f"archive file {where} cannot be read: {exc}"
    try:
        return ledger_archives.by_block(ledger_archives.decode(data)), None
    except ValueError as exc:
        return None, f"archive file {where} is not an archive: {exc}"


def verify_files(conn) -> list[ledger_chain.BlockProblem]:
    """Fetch every recorded archive file, check its sha256, recompute each of its blocks'
    leaves and root from its rows and compare them with the sealed block (and the root the
    archive record kept). One problem per unprovable block."""
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
        rows, why = _fetch(f.url, f.digest)
        numbers = [b.block for b in blocks]
        sealed = ledger_archives.sealed(conn, numbers)
        for b in blocks:
            s = sealed.get(b.block)
            if why is not None:
                problem = why
            elif s is None:
                problem = "the archived block has no sealed block"
            elif s.root != b.root:
                problem = "the archive record names another root than the sealed block's"
            else:
                problem = ledger_archives.block_problem(rows.get(b.block, []), s)
                if problem:
                    problem = f"archive file {file_url(f.url, f.digest)}: {problem}"
            if problem:
                problems.append(ledger_chain.BlockProblem(
                    b.block, f"{problem}; the block's decisions are unprovable"))
        if why is None and set(rows) - set(numbers):
            extra = sorted(set(rows) - set(numbers))
            problems.append(ledger_chain.BlockProblem(
                extra[0], f"archive file {file_url(f.url, f.digest)} holds blocks its record "
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
    """The archived decision ``decision_id`` read from its file, its block recomputed from
    the file against the sealed root; None when no archive record covers it."""
    n = len(ledger_chain.CHAINED)
    for hit in ledger_archives.locate(conn, decision_id):
        rows, why = _fetch(hit.url, hit.digest)
        where = file_url(hit.url, hit.digest)
        if why is not None:
            return Found(_stub(decision_id, hit.block), where, False, why)
        block_rows = rows.get(hit.block, [])
        mine = [r for r in block_rows if r[0] == decision_id]
        if not mine:
            continue
        sealed = ledger_archives.sealed(conn, [hit.block]).get(hit.block)
        problem = ("the archived block has no sealed block" if sealed is None
                   else ledger_archives.block_problem(block_rows, sealed))
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
