"""What a contamination scan reads: sources of documents, streamed.

A source is a JSONL / JSON / CSV / text file (``.gz`` too), a directory of such files, a
registered artifact (a dataset or eval set, by digest; a directory artifact's files are
read from the blob store and verified as they stream), or a prompt (by alias or digest:
its template, system text and every few-shot example). How each file format becomes
documents is in :mod:`.formats`; in a directory, files that are not UTF-8 text are
skipped and listed in the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ... import digest as dg
from ...errors import NotFoundError, UnknownAliasError, ValidationError
from .formats import Document, Piece, file_format, read_piece, read_stream, record_text

__all__ = ["Document", "Piece", "Source", "artifact_source", "directory_files",
           "directory_source", "file_format", "file_source", "load_items", "needs_ledger",
           "open_source", "pieces_source", "prompt_source", "read_stream", "record_text", "texts_source"]


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
    # the files it reads, in order, when it reads files (what a Dask cluster's workers can
    # read on their own); None for documents held in memory
    pieces: list[Piece] | None = None

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


# --- files and directories -------------------------------------------------------------
def _read_pieces(src: Source) -> Iterator[Document]:
    for piece in src.pieces:
        yield from read_piece(piece, src)


def pieces_source(name: str, kind: str, pieces: list[Piece], digest: str | None = None
                  ) -> Source:
    """A source that reads these files in order."""
    return Source(name, kind, _read_pieces, size=sum(p.size for p in pieces), digest=digest,
                  pieces=pieces)


def file_source(path: Path, name: str | None = None) -> Source:
    path = Path(path)
    label = name or str(path)
    return pieces_source(label, "file", [Piece(path, label, path.stat().st_size, path.name)])


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
    prefix = (name or str(root)).rstrip("/") + "/"
    pieces = [Piece(path, prefix + path.relative_to(root).as_posix(), path.stat().st_size,
                    path.name, lenient=True) for path in directory_files(root)]
    return pieces_source(name or str(root), "directory", pieces)


# --- artifacts -------------------------------------------------------------------------
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
    else:
        entries = [(Path(art.source_path).name if art.source_path else art.name, art.digest)]
    size = sum(store.blobs.size(digest) or 0 for _path, digest in entries)
    if hasattr(store.blobs, "path_of"):  # a directory store: workers read the blob files
        pieces = [Piece(store.blobs.path_of(digest), path, store.blobs.size(digest) or 0, path,
                        digest=digest) for path, digest in entries]
        return pieces_source(label, "artifact", pieces, digest=art.digest)

    def read(src: Source) -> Iterator[Document]:
        # an object store: each blob fetched to a local copy when the scan reaches it
        for path, digest in entries:
            try:
                local = store.blobs.local_path(digest)
            except NotFoundError:
                raise NotFoundError(f"{path}: blob {digest} is missing from the blob store",
                                    hint="the payload was collected or never stored") from None
            yield from read_piece(Piece(local, path, 0, path, digest=digest), src)

    return Source(label, "artifact", read, size=size, digest=art.digest)


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


POOL_SHAPED = ("jsonl", "json", "csv", "tsv")


def _pool_shaped_items(path: Path, label: str) -> list:
    """Eval items from a file written like a pool file: each record's text as the pool side
    reads it (its ``text`` field, else every string but ``id`` and ``role``; a CSV row's
    ``text`` column, else every cell but ``id``), its ``id`` or its line as the item id."""
    from ..harness.evalsets import EvalItem

    src = file_source(path, label)
    items, seen = [], set()
    for doc in src.documents():
        if not doc.text.strip():
            raise ValidationError(
                f"{doc.locator} holds no text: an eval item needs an 'input' field, or, as a "
                "pool record, a 'text' field or other string fields")
        item_id = doc.doc_id or doc.locator.rpartition(":")[2] or doc.locator
        if item_id in seen:
            raise ValidationError(f"{doc.locator}: item id {item_id!r} repeats", field="evalset")
        seen.add(item_id)
        items.append(EvalItem(id=item_id, input=doc.text))
    if not items:
        raise ValidationError(f"{label} holds no items", field="evalset")
    return items


def _has_input(path: Path) -> bool:
    """Whether any record of the file names an ``input`` (it means to be an eval set)."""
    import csv
    import io

    import orjson

    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        try:
            records = orjson.loads(stripped) if stripped[:1] == "[" else None
        except orjson.JSONDecodeError:
            records = None
        if records is None:
            records = []
            for line in text.splitlines():
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return any(isinstance(r, dict) and "input" in r for r in records)
    return "input" in (csv.DictReader(io.StringIO(text)).fieldnames or [])


def load_items(ref: str, *, store=None, base: Path | None = None, field: str = "evalset"):
    """(items, digest or None) of the eval set ``ref`` names: a file or a digest. A file
    that is not an eval set (no ``input`` field) but is shaped like a pool file (records
    with ``text``, or other string fields) is read as the pool side reads it."""
    from ..harness.evalsets import load_evalset, load_evalset_file

    if dg.is_digest(ref):
        if store is None:
            raise ValidationError(f"{ref} is a digest; reading it needs a ledger", field=field)
        return load_evalset(store, ref), ref
    path = _path(ref, base)
    if not path.is_file():
        raise ValidationError(f"{ref!r} is neither a file nor a sha256: digest", field=field)
    try:
        return load_evalset_file(path), None
    except ValidationError as exc:
        with path.open("rb") as fh:
            head = fh.read(8192)
        if file_format(path.name, head) not in POOL_SHAPED or _has_input(path):
            raise  # an eval set with a mistake in it: its own error says which
        try:
            return _pool_shaped_items(path, ref), None
        except ValidationError as pool_exc:
            raise ValidationError(
                f"{ref} is neither an eval set ({exc.message}) nor readable as pool records "
                f"({pool_exc.message}); accepted: eval items with 'input' (modelward's eval "
                "set format), or records with 'text' or other string fields, as in pool files",
                field=field) from None
