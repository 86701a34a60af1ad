"""Documents out of bytes: the file formats a contamination scan reads, and the reading of
one file (:class:`Piece`) of a source, whole or as a byte range cut at line boundaries.

Which text a record contributes: its ``text`` field when it has one, else every string in
it (nested ones included) except the values of ``id`` and ``role``. A CSV row: its
``text`` column, else every cell but ``id``. A text file: one document per paragraph
(blocks separated by blank lines).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from ...errors import BlobCorruptError, NotFoundError, ValidationError

SKIP_KEYS = frozenset({"id", "role"})
_new = tuple.__new__  # Document(…) without NamedTuple's Python-level __new__
_SNIFF = 8192


class Document(NamedTuple):  # a tuple: a million of them are made per scan
    text: str
    locator: str  # pool.jsonl:1234, docs/faq.md:12, few_shot[3]
    doc_id: str | None = None
    # eval items this text is known to hold (it was rendered for them): not reported
    owner: frozenset[str] | None = None



# --- records to text -------------------------------------------------------------------
def record_text(obj) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return obj["text"]
    parts: list[str] = []
    _strings(obj, parts)
    return "\n".join(parts)


def _strings(obj, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key not in SKIP_KEYS:
                _strings(value, out)
    elif isinstance(obj, list):
        for value in obj:
            _strings(value, out)


def _doc_id(obj) -> str | None:
    value = obj.get("id") if isinstance(obj, dict) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


# --- formats ---------------------------------------------------------------------------
def file_format(name: str, head: bytes = b"") -> str:
    """jsonl | json | csv | tsv | text, from the name (``.gz`` looked through), else sniffed."""
    lower = name.lower().removesuffix(".gz")
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                        (".csv", "csv"), (".tsv", "tsv")):
        if lower.endswith(suffix):
            return fmt
    stripped = head.lstrip()
    if stripped[:1] == b"{":
        return "jsonl"
    if stripped[:1] == b"[":
        return "json"
    return "text"


def read_stream(fh, fmt: str, label: str, src, tell, first_line: int = 1
                ) -> Iterator[Document]:
    """Documents of one binary stream in format ``fmt``; ``tell()`` gives bytes consumed,
    counted into ``src.consumed``. ``first_line``: the number of the stream's first line
    in its file (a byte range of a file starts further down)."""
    base = src.consumed
    if fmt == "jsonl":
        loads, prefix = orjson.loads, label + ":"
        for number, line in enumerate(_lines(fh), start=first_line):
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    continue
                raise ValidationError(f"{label}:{number} is not valid JSON ({exc.msg}, column "
                                      f"{exc.colno})", field="against") from None
            if not number & 1023:
                src.consumed = base + tell()
            # the common shape first: {"id": …, "text": "…"}
            if type(obj) is dict and type(text := obj.get("text")) is str:
                key = obj.get("id")
                yield _new(Document, (text, prefix + str(number),
                                      key if type(key) is str else _doc_id(obj), None))
            else:
                yield Document(record_text(obj), prefix + str(number), _doc_id(obj))
    elif fmt == "json":
        data = fh.read()
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            yield from read_stream(io.BytesIO(data), "jsonl", label, src, tell, first_line)
            return
        src.consumed = base + tell()
        values = value if isinstance(value, list) else [value]
        for i, obj in enumerate(values):
            where = f"{label}[{i}]" if isinstance(value, list) else label
            yield Document(record_text(obj), where, _doc_id(obj))
    elif fmt in ("csv", "tsv"):
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        # a cell is a whole document, often longer than csv's default 128 KiB limit
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
        # strict: a stray quote is an error, never a cell that swallows the lines after it
        reader = csv.DictReader(text, delimiter="\t" if fmt == "tsv" else ",", strict=True)
        line = 2
        try:
            for row in reader:
                src.consumed = base + tell()
                if None in row or None in row.values():
                    raise ValidationError(f"{label}: not as many cells as the header has "
                                          f"({len(reader.fieldnames)})", line=line)
                cells = row.get("text")
                if cells is None:
                    cells = "\n".join(v for k, v in row.items()
                                      if k not in SKIP_KEYS and isinstance(v, str) and v)
                yield Document(cells, f"{label}:{line}", row.get("id") or None)
                line = reader.line_num + 1
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValidationError(f"{label}: not a readable CSV file ({exc})",
                                  line=reader.line_num) from None
    else:
        yield from _paragraphs(fh, label, src, base, tell, first_line)


def _lines(fh, block: int = 1 << 22) -> Iterator[bytes]:
    """The lines of a binary stream, read in large blocks (faster than line iteration)."""
    carry = b""
    while data := fh.read(block):
        lines = (carry + data).split(b"\n")
        carry = lines.pop()
        yield from lines
    if carry:
        yield carry


def _paragraphs(fh, label: str, src, base: int, tell, first_line: int = 1
                ) -> Iterator[Document]:
    lines: list[str] = []
    first = 0
    for number, raw in enumerate(fh, start=first_line):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{label} is not UTF-8 text", line=number) from None
        if line.strip():
            if not lines:
                first = number
            lines.append(line)
        elif lines:
            src.consumed = base + tell()
            yield Document("".join(lines), f"{label}:{first}")
            lines = []
    if lines:
        src.consumed = base + tell()
        yield Document("".join(lines), f"{label}:{first}")


# --- one file of a source ------------------------------------------------------------------
_SNIFF = 8192


class Piece(NamedTuple):
    """One file a source reads: a file on disk, or a blob checked against its digest."""

    path: Path
    label: str  # locator prefix: the file as the user named it
    size: int  # bytes, for progress
    name: str  # where the format comes from (.jsonl, .gz, …): the file's or blob's name
    lenient: bool = False  # a directory member: a file that is not UTF-8 text is skipped
    digest: str | None = None  # a blob: verified as it streams; a mismatch fails the scan


def read_piece(piece: Piece, src) -> Iterator[Document]:
    """The documents of one piece, whole."""
    if piece.digest is not None:
        yield from _read_blob(piece, src)
    else:
        yield from _read_file(piece, src)


def sniff(piece: Piece) -> tuple[str, bool]:
    """(format, readable): the format a whole-file read would pick, and False when the
    piece is a directory member that is not UTF-8 text (skipped)."""
    fh, raw = _open(piece.path)
    with raw:
        head = fh.peek(_SNIFF)[:_SNIFF]
    if piece.lenient and (b"\x00" in head or not _utf8_prefix(head)):
        return "", False
    return file_format(piece.name, head), True


def _open(path: Path):
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw), raw
    return raw, raw


def _read_file(piece: Piece, src) -> Iterator[Document]:
    path, label = piece.path, piece.label
    fh, raw = _open(path)
    with raw:
        try:
            head = fh.peek(_SNIFF)[:_SNIFF] if hasattr(fh, "peek") else b""
        except (OSError, EOFError) as exc:
            raise ValidationError(f"{label}: cannot read ({exc})") from None
        if piece.lenient and (b"\x00" in head or not _utf8_prefix(head)):
            src.skipped.append(f"{label}: not UTF-8 text")
            src.consumed += path.stat().st_size
            return
        base = src.consumed
        try:
            yield from read_stream(fh, file_format(path.name, head), label, src, raw.tell)
        except (OSError, EOFError) as exc:
            raise ValidationError(f"{label}: cannot read ({exc})") from None
        src.consumed = base + path.stat().st_size


def _utf8_prefix(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the sniff boundary
    return True


class _VerifiedBlob(io.RawIOBase):
    """A blob read as a stream, hashed as it goes; a mismatch at the end is an error."""

    def __init__(self, path: Path, digest: str) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self._digest = digest
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._fh.readinto(buffer)
        if n:
            self._hash.update(memoryview(buffer)[:n])
            self.count += n
        elif "sha256:" + self._hash.hexdigest() != self._digest:
            raise BlobCorruptError(f"blob {self._digest} is corrupt: its bytes no longer "
                                   "match its digest", hint="re-register the artifact")
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _read_blob(piece: Piece, src) -> Iterator[Document]:
    if not piece.path.is_file():
        raise NotFoundError(f"{piece.label}: blob {piece.digest} is missing from the blob "
                            "store", hint="the payload was collected or never stored")
    raw = _VerifiedBlob(piece.path, piece.digest)
    buffered = io.BufferedReader(raw, 1 << 20)
    fh = gzip.GzipFile(fileobj=buffered) if piece.name.lower().endswith(".gz") else buffered
    with buffered:
        fmt = file_format(piece.name, buffered.peek(_SNIFF)[:_SNIFF])
        yield from read_stream(fh, fmt, piece.label, src, lambda: raw.count)
        while buffered.read(1 << 20):  # finish hashing whatever the reader left unread
            pass
