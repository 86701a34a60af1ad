"""What a contamination scan reads: sources of documents, streamed.

A source is a JSONL / JSON / CSV / text file (``.gz`` too), a directory of such files, a
registered artifact (a dataset or eval set, by digest; a directory artifact's files are
read from the blob store and verified as they stream), or a prompt (by alias or digest:
its template, system text and every few-shot example).

Which text a record contributes: its ``text`` field when it has one, else every string in
it (nested ones included) except the values of ``id`` and ``role``. A CSV row: its
``text`` column, else every cell but ``id``. A text file: one document per paragraph
(blocks separated by blank lines). In a directory, files that are not UTF-8 text are
skipped and listed in the report.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

from ... import digest as dg
from ...errors import BlobCorruptError, NotFoundError, UnknownAliasError, ValidationError

SKIP_KEYS = frozenset({"id", "role"})
_new = tuple.__new__  # Document(…) without NamedTuple's Python-level __new__
_SNIFF = 8192


class Document(NamedTuple):  # a tuple: a million of them are made per scan
    text: str
    locator: str  # pool.jsonl:1234, docs/faq.md:12, few_shot[3]
    doc_id: str | None = None
    # eval items this text is known to hold (it was rendered for them): not reported
    owner: frozenset[str] | None = None


@dataclass
class Source:
    """Documents to scan, read lazily by :meth:`documents`. ``consumed`` / ``size`` (bytes)
    drive the progress bar."""

    name: str  # as the user gave it
    kind: str  # file | directory | artifact | prompt | texts
    read: Callable[[Source], Iterator[Document]]
    size: int | None = None
    digest: str | None = None
    consumed: int = 0
    documents_read: int = 0
    skipped: list[str] = field(default_factory=list)

    def documents(self) -> Iterator[Document]:
        """The documents, in order (the scan counts them into ``documents_read``)."""
        return self.read(self)

    def summary(self) -> dict:
        return {"name": self.name, "kind": self.kind, "digest": self.digest,
                "documents": self.documents_read, "skipped": list(self.skipped)}


def texts_source(name: str, entries, *, kind: str = "texts", digest: str | None = None) -> Source:
    """A source of in-memory texts: ``(locator, text)``, or ``(locator, text, owners)``
    where owners are the ids of eval items the text is known to hold."""
    docs = [Document(e[1], e[0], owner=frozenset(e[2]) if len(e) > 2 and e[2] else None)
            for e in entries]

    def read(src: Source) -> Iterator[Document]:
        for d in docs:
            src.consumed += len(d.text)
            yield d

    return Source(name, kind, read, size=sum(len(d.text) for d in docs), digest=digest)


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


def read_stream(fh, fmt: str, label: str, src: Source, tell) -> Iterator[Document]:
    """Documents of one binary stream in format ``fmt``; ``tell()`` gives bytes consumed."""
    base = src.consumed
    if fmt == "jsonl":
        loads, prefix = orjson.loads, label + ":"
        for number, line in enumerate(_lines(fh), start=1):
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
            yield from read_stream(io.BytesIO(data), "jsonl", label, src, tell)
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
        reader = csv.DictReader(text, delimiter="\t" if fmt == "tsv" else ",")
        line = 2
        try:
            for row in reader:
                src.consumed = base + tell()
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
        yield from _paragraphs(fh, label, src, base, tell)


def _lines(fh, block: int = 1 << 22) -> Iterator[bytes]:
    """The lines of a binary stream, read in large blocks (faster than line iteration)."""
    carry = b""
    while data := fh.read(block):
        lines = (carry + data).split(b"\n")
        carry = lines.pop()
        yield from lines
    if carry:
        yield carry


def _paragraphs(fh, label: str, src: Source, base: int, tell) -> Iterator[Document]:
    lines: list[str] = []
    first = 0
    for number, raw in enumerate(fh, start=1):
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


# --- files and directories -------------------------------------------------------------
def _open(path: Path):
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw), raw
    return raw, raw


def _read_file(path: Path, label: str, src: Source, *, lenient: bool = False
               ) -> Iterator[Document]:
    fh, raw = _open(path)
    with raw:
        try:
            head = fh.peek(_SNIFF)[:_SNIFF] if hasattr(fh, "peek") else b""
        except (OSError, EOFError) as exc:
            raise ValidationError(f"{label}: cannot read ({exc})") from None
        if lenient and (b"\x00" in head or not _utf8_prefix(head)):
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


def file_source(path: Path, name: str | None = None) -> Source:
    path = Path(path)
    return Source(name or str(path), "file",
                  lambda src: _read_file(path, name or str(path), src),
                  size=path.stat().st_size)


def directory_files(root: Path) -> list[Path]:
    """Every regular file under ``root``, sorted, hidden files and directories left out."""
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(here) / f for f in sorted(files) if not f.startswith(".")]
    return [p for p in found if p.is_file()]


def directory_source(root: Path, name: str | None = None) -> Source:
    """Every file under ``root``; locators are the directory as named plus the file's
    relative path (``docs/faq/sso.md:12``)."""
    root = Path(root)
    files = directory_files(root)
    prefix = (name or str(root)).rstrip("/") + "/"

    def read(src: Source) -> Iterator[Document]:
        for path in files:
            yield from _read_file(path, prefix + path.relative_to(root).as_posix(), src,
                                  lenient=True)

    return Source(name or str(root), "directory", read,
                  size=sum(p.stat().st_size for p in files))


# --- artifacts -------------------------------------------------------------------------
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


def _read_blob(store, digest: str, label: str, src: Source, fmt_name: str
               ) -> Iterator[Document]:
    try:
        path = store.blobs.local_path(digest)  # an object store's verified local copy
    except NotFoundError:
        raise NotFoundError(f"{label}: blob {digest} is missing from the blob store",
                            hint="the payload was collected or never stored") from None
    raw = _VerifiedBlob(path, digest)
    buffered = io.BufferedReader(raw, 1 << 20)
    fh = gzip.GzipFile(fileobj=buffered) if fmt_name.lower().endswith(".gz") else buffered
    with buffered:
        fmt = file_format(fmt_name, buffered.peek(_SNIFF)[:_SNIFF])
        yield from read_stream(fh, fmt, label, src, lambda: raw.count)
        while buffered.read(1 << 20):  # finish hashing whatever the reader left unread
            pass


def artifact_source(store, art, name: str | None = None) -> Source:
    """A dataset or eval set artifact (a file, or a directory of files)."""
    from ..harness.evalsets import parse_evalset

    label = name or art.digest
    if art.payload != "blob":
        raise ValidationError(f"artifact {art.digest} ({art.name}) has no stored payload "
                              f"({art.payload}); there is nothing to scan", field="against")
    if art.kind == "evalset":
        items = parse_evalset(store.blobs.get(art.digest), name=art.digest)
        docs = [Document(it.text(), f"{art.name}:{it.id}", it.id) for it in items]
        return Source(label, "artifact", lambda src: iter(docs), size=None, digest=art.digest)
    if art.is_directory:
        entries = dg.parse_manifest(store.blobs.get(art.digest))

        def read(src: Source) -> Iterator[Document]:
            for path, digest in entries:
                yield from _read_blob(store, digest, path, src, path)

        size = sum(store.blobs.size(d) or 0 for _p, d in entries)
        return Source(label, "artifact", read, size=size, digest=art.digest)
    file_name = Path(art.source_path).name if art.source_path else art.name
    return Source(label, "artifact",
                  lambda src: _read_blob(store, art.digest, file_name, src, file_name),
                  size=store.blobs.size(art.digest), digest=art.digest)


def prompt_source(store, digest: str, name: str | None = None) -> Source:
    """A prompt's template, system text and few-shot examples, each one document."""
    from ..harness.prompts import load_prompt

    prompt = load_prompt(store, digest)
    return texts_source(name or digest, prompt.texts(), kind="prompt", digest=digest)


# --- resolving what the user named -------------------------------------------------------
def needs_ledger(ref: str, base: Path | None = None) -> bool:
    """True when ``ref`` is a digest or an alias rather than an existing path."""
    return dg.is_digest(ref) or not _path(ref, base).exists()


def _path(ref: str, base: Path | None) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() or base is None else base / path


def open_source(ref: str, *, store=None, conn=None, at: int | None = None,
                base: Path | None = None, field: str = "against") -> Source:
    """The source ``ref`` names: an existing file or directory (relative to ``base``), a
    ``sha256:`` digest of a registered artifact, or an alias (resolved at ``at``)."""
    from ...ledger import aliases, artifacts

    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError("a source must be a non-empty string", field=field)
    if not dg.is_digest(ref):
        path = _path(ref, base)
        if path.is_dir():
            return directory_source(path, ref)
        if path.is_file():
            return file_source(path, ref)
    if store is None or conn is None:
        raise ValidationError(f"{ref!r} is not a file or directory", field=field,
                              hint="digests and aliases need a ledger (--home)")
    if dg.is_digest(ref):
        digest = ref
    else:
        try:
            aliases.check_alias(ref)
        except ValidationError:
            raise ValidationError(f"{ref!r} is not a file, a directory, a sha256: digest or "
                                  "an alias", field=field) from None
        try:
            digest = aliases.resolve_at(conn, ref, at).digest
        except UnknownAliasError as exc:
            if not exc.message.startswith("no alias named"):
                raise  # it exists, just not at `at`
            raise ValidationError(f"{ref!r} is not a file, a directory, a sha256: digest or "
                                  "an alias", field=field) from None
    art = artifacts.get(conn, digest)
    if art.kind == "prompt":
        return prompt_source(store, digest, ref)
    return artifact_source(store, art, ref)


def load_items(ref: str, *, store=None, base: Path | None = None, field: str = "evalset"):
    """(items, digest or None) of the eval set ``ref`` names: a file or a digest."""
    from ..harness.evalsets import load_evalset, load_evalset_file

    if dg.is_digest(ref):
        if store is None:
            raise ValidationError(f"{ref} is a digest; reading it needs a ledger", field=field)
        return load_evalset(store, ref), ref
    path = _path(ref, base)
    if not path.is_file():
        raise ValidationError(f"{ref!r} is neither a file nor a sha256: digest", field=field)
    return load_evalset_file(path), None
