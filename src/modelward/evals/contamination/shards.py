"""A pool cut into shards that workers scan on their own, and the scan of one shard.

A shard is one file of a source (a file, a directory member, a blob of a dataset
artifact), a byte range of a large JSONL or text file, or a slice of a source held in
memory (a prompt, in-memory texts, an eval set used as a pool). Large files are cut at
line boundaries (JSONL) or after a blank line (text: a paragraph never straddles a cut),
so each range parses on its own into exactly the documents a whole-file read gives.
Line numbers inside a range start at 1; the scan adds the lines of the ranges before it
once those are read (:func:`relocate`), so locators are the whole file's ``file:line``.

Compressed files, JSON arrays, CSV files (a quoted cell may hold a newline) and blobs
(verified against their digest as a whole) are not cut.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ...errors import ValidationError
from .corpus import Document, Source
from .formats import Piece, read_piece, read_stream, sniff
from .report import Findings, Match, Params

_PROBE = 1 << 16  # bytes read at a time while looking for a cut


@dataclass(frozen=True)
class Shard:
    """One task's part of the pool."""

    source: int  # its source's position in the scan
    name: str  # its source's name (what matches report as their source)
    kind: str
    size: int  # bytes (characters for texts held in memory), for progress
    piece: Piece | None = None  # the file it reads; None: ``documents`` are the shard
    start: int = 0  # with ``end``: the byte range [start, end) of the piece
    end: int | None = None
    fmt: str | None = None  # the piece's format, when it is read as ranges
    part: int = 0  # the range's number within its piece (line numbers need the ones before)
    documents: tuple[Document, ...] = ()


@dataclass
class ScanContext:
    """What every task needs, sent to each worker once."""

    index: object  # the EvalIndex
    ids: list[str]
    params: Params


@dataclass
class ShardResult:
    findings: Findings  # its matches, cut to max_matches per item
    skipped: list[str] = field(default_factory=list)
    lines: int | None = None  # newlines in the range (for the locators of later ranges)


# --- cutting the pool --------------------------------------------------------------------
def plan(sources: list[Source], target: int) -> list[Shard]:
    """The shards of every source, in reading order, each about ``target`` bytes."""
    shards: list[Shard] = []
    for number, src in enumerate(sources):
        if src.pieces is None:
            shards += _in_memory(number, src, target)
            continue
        for piece in src.pieces:
            # workers may run elsewhere: name the file from the root, not from our cwd
            piece = piece._replace(path=piece.path.absolute())
            cuts = _cuts(piece, target)
            if cuts is None:
                shards.append(Shard(number, src.name, src.kind, piece.size, piece))
                continue
            fmt, cuts = cuts
            for part, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
                shards.append(Shard(number, src.name, src.kind, b - a, piece, a, b, fmt, part))
    return shards


def _in_memory(number: int, src: Source, target: int) -> list[Shard]:
    shards, chunk, size = [], [], 0
    for doc in src.documents():
        chunk.append(doc)
        size += len(doc.text)
        if size >= target:
            shards.append(Shard(number, src.name, src.kind, size, documents=tuple(chunk)))
            chunk, size = [], 0
    if chunk:
        shards.append(Shard(number, src.name, src.kind, size, documents=tuple(chunk)))
    return shards


def _cuts(piece: Piece, target: int) -> tuple[str, list[int]] | None:
    """(format, byte offsets from 0 to the file's size) where a large JSONL or text file
    can be cut, or None to read it whole."""
    if piece.digest is not None or piece.size <= target \
            or piece.name.lower().endswith(".gz"):
        return None
    try:
        fmt, readable = sniff(piece)
    except (OSError, EOFError):
        return None  # the worker reading it whole reports the error
    if not readable or fmt not in ("jsonl", "text"):
        return None
    cuts = [0]
    with open(piece.path, "rb") as fh:
        while cuts[-1] + target < piece.size:
            cut = _next_cut(fh, cuts[-1] + target, fmt)
            if cut is None or cut >= piece.size:
                break
            cuts.append(cut)
    cuts.append(piece.size)
    return fmt, cuts


def _next_cut(fh, at: int, fmt: str) -> int | None:
    """The first offset >= ``at`` that starts a line (JSONL) or follows a blank line
    (text); None when there is none."""
    fh.seek(at - 1)
    where = at - 1
    while data := fh.read(_PROBE):
        found = data.find(b"\n")
        if found >= 0:
            cut = where + found + 1
            break
        where += len(data)
    else:
        return None
    if fmt == "jsonl":
        return cut
    # text: a line blank as the paragraph reader sees it ends a paragraph; cut after it
    fh.seek(cut)
    for raw in fh:
        cut += len(raw)
        try:
            blank = not raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            blank = False  # the reader fails on it, in whichever shard holds it
        if blank and raw.endswith(b"\n"):
            return cut
    return None


# --- reading and scanning one shard (on a worker) ------------------------------------------
class ByteRange(io.RawIOBase):
    """Bytes ``[start, end)`` of a file as a stream; counts the newlines it has read."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._fh.seek(start)
        self._left = end - start
        self.count = 0
        self.newlines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[:self._left]
        n = self._fh.readinto(view) if len(view) else 0
        if n:
            self._left -= n
            self.count += n
            self.newlines += bytes(view[:n]).count(b"\n")
        return n

    def tell(self) -> int:
        return self.count

    def close(self) -> None:
        self._fh.close()
        super().close()


def read_shard(shard: Shard, src: Source, *, first_line: int = 1,
               tally: dict | None = None) -> Iterator[Document]:
    """The documents of a shard; a range numbers its lines from ``first_line`` and puts
    the newlines it held in ``tally["lines"]``."""
    if shard.piece is None:
        for doc in shard.documents:
            src.consumed += len(doc.text)
            yield doc
    elif shard.end is None:
        yield from read_piece(shard.piece, src)
    else:
        raw = ByteRange(shard.piece.path, shard.start, shard.end)
        with io.BufferedReader(raw, 1 << 20) as fh:
            try:
                yield from read_stream(fh, shard.fmt, shard.piece.label, src, raw.tell,
                                       first_line)
            except (OSError, EOFError) as exc:
                raise ValidationError(f"{shard.piece.label}: cannot read ({exc})") from None
        if tally is not None:
            tally["lines"] = raw.newlines


def scan_shard(context: ScanContext, shard: Shard) -> ShardResult:
    """Scan one shard (a Dask task): the same batches and matching as a scan in one
    process."""
    from .scan import prepared, scan_batches

    tally: dict = {}
    src = Source(shard.name, shard.kind, lambda s: read_shard(shard, s, tally=tally))
    found = Findings(context.params.max_matches)
    scan_batches(prepared(src, context.params), lambda: context.index, context.ids,
                 context.params, found)
    return ShardResult(found.pruned(), src.skipped, tally.get("lines"))


def reread_shard(shard: Shard, first_line: int) -> None:
    """Read a range again with its true line numbers (a Dask task): raises the error a
    whole-file read raises, with the line it names."""
    src = Source(shard.name, shard.kind, lambda s: read_shard(shard, s, first_line=first_line))
    for _doc in src.documents():
        pass


def relocate(shard: Shard, lines_before: int):
    """A function giving a match of a range the locator a whole-file read gives it."""
    if shard.part == 0 or not lines_before:
        return None
    prefix = shard.piece.label + ":"

    def moved(match: Match) -> Match:
        line = int(match.locator[len(prefix):]) + lines_before
        return replace(match, locator=f"{prefix}{line}")

    return moved
