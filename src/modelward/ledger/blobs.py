"""The content-addressed blob store: a local directory, or an object store.

Both keep a blob at ``sha256/ab/cdef…`` under their root and share one interface:
``put_bytes``, ``put_file``, ``put_stream``, ``stage``, ``get``, ``iter_chunks``, ``verify``,
``copy_to``, ``local_path``, ``signature``, ``has``, ``size``, ``delete``, ``digests``. Every
read re-hashes the bytes and raises BlobCorruptError on a mismatch.

* :class:`BlobStore` (a directory, ``/srv/blobs`` or ``file:///srv/blobs``): writes go to
  a temporary file that is fsynced and renamed into place, so a blob is either whole or
  absent.
* :class:`~modelward.ledger.objectstore.ObjectBlobStore` (``s3://bucket/prefix``,
  ``gs://…``, ``az://…``): through obstore, credentials from the standard environment of
  each cloud; see that module.

:func:`open_blob_store` picks one from the ``blob_url`` setting.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..digest import check_digest, of_bytes
from ..errors import BlobCorruptError, NotFoundError
from ..settings import is_remote

CHUNK = 1 << 20


def blob_key(digest: str) -> str:
    """``sha256/ab/cdef…``: where a blob lives under a store's root."""
    check_digest(digest)
    hexd = digest[7:]
    return f"sha256/{hexd[:2]}/{hexd[2:]}"


def check_key(key: str) -> str:
    """A plain relative key for a named (not content-addressed) object: segments of
    letters, digits and ``._=-``, no ``..``. Archive files use these (Hive-style paths)."""
    parts = key.split("/") if isinstance(key, str) else []
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-")
    if not parts or any(not p or p in (".", "..") or set(p) - ok for p in parts):
        raise ValueError(f"not a plain object key: {key!r}")
    return key


def stat_signature(path: Path) -> list[int] | None:
    """What changes whenever a file's bytes are rewritten; None when there is no file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def open_blob_store(url: str | os.PathLike, *, cache_dir: Path):
    """The blob store at ``url``: a directory (path or ``file://``) or an object store
    (``s3://``, ``gs://``, ``az://`` …). ``cache_dir`` holds an object store's local copies
    and verification records (unused by a directory store)."""
    text = os.fspath(url)
    if is_remote(text):
        from .objectstore import ObjectBlobStore

        return ObjectBlobStore(text, cache_dir=Path(cache_dir))
    return BlobStore(Path(text[len("file://"):] if text.startswith("file://") else text))


@dataclass
class Staged:
    """Bytes written to a blob store under a temporary name, hashed while they streamed:
    :meth:`commit` puts them in place under ``digest`` (True when this created the blob,
    False when the store already held it whole); :meth:`discard` removes them. Use as a
    context manager: leaving it without a commit discards, so a cut-off or refused upload
    leaves nothing behind."""

    digest: str
    size: int
    _commit: Callable[[], bool] = field(repr=False)
    _discard: Callable[[], None] = field(repr=False)
    done: bool = False

    def commit(self) -> bool:
        created = self._commit()
        self.done = True
        return created

    def discard(self) -> None:
        if not self.done:
            self._discard()
            self.done = True

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


def _hash_chunks(chunks: Iterable[bytes], h) -> Iterator[bytes]:
    for chunk in chunks:
        h.update(chunk)
        yield chunk


class BlobStore:
    """Blobs in a local directory."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return str(self.root)

    @property
    def verified_dir(self) -> Path:
        """Where the verification cache of this store lives (registry/verification.py)."""
        return self.root / "verified"

    def path_of(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    def signature(self, digest: str) -> list | None:
        """What changes when the blob is rewritten (size, times, inode); None when absent."""
        return stat_signature(self.path_of(digest))

    def local_path(self, digest: str) -> Path:
        """A local file holding the blob as stored (not verified here: callers that trust
        it verify first). For a directory store, the blob file itself."""
        path = self.path_of(digest)
        if not path.is_file():
            raise NotFoundError(f"blob {digest} is not in the store at {self.root}")
        return path

    def has(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def _commit(self, tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _tmp(self) -> tuple[int, Path]:
        tmpdir = self.root / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmpdir)
        return fd, Path(name)

    def put_bytes(self, data: bytes) -> str:
        digest = of_bytes(data)
        final = self.path_of(digest)
        # an existing blob is trusted only if it still verifies: re-storing repairs a corrupt one
        if final.is_file() and self.verify(digest) == "present":
            return digest
        return self.put_stream([data], expected=digest)

    def put_file(self, path: Path, expected: str | None = None) -> str:
        """Copy a file in, hashing as it streams; ``expected`` guards against a file that
        changed since it was digested."""
        with open(path, "rb") as src:
            return self.put_stream(iter(lambda: src.read(CHUNK), b""), expected=expected,
                                   what=str(path))

    def put_stream(self, chunks: Iterable[bytes], *, expected: str | None = None,
                   what: str = "the payload", size: int | None = None) -> str:
        """Store bytes read from ``chunks``; their digest must be ``expected`` when given."""
        fd, tmp = self._tmp()
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _hash_chunks(chunks, h):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + h.hexdigest()
            if expected is not None and digest != expected:
                raise BlobCorruptError(f"{what} changed while it was being stored "
                                       f"({expected} became {digest})")
            final = self.path_of(digest)
            if not final.is_file() or self.verify(digest) != "present":
                self._commit(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

    def stage(self, chunks: Iterable[bytes]) -> Staged:
        """Write ``chunks`` to a temporary file of this store (``tmp/`` under its root, never
        the system temp directory), hashing and fsyncing; a :class:`Staged` to commit."""
        fd, tmp = self._tmp()
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _hash_chunks(chunks, h):
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        digest = "sha256:" + h.hexdigest()

        def commit() -> bool:
            try:
                final = self.path_of(digest)
                if final.is_file() and self.verify(digest) == "present":
                    return False
                self._commit(tmp, final)
                return True
            finally:
                tmp.unlink(missing_ok=True)

        return Staged(digest, size, commit, lambda: tmp.unlink(missing_ok=True))

    def iter_chunks(self, digest: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The blob's bytes as stored, in chunks (NOT verified: see :meth:`verified_chunks`)."""
        try:
            fh = open(self.path_of(digest), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store at {self.root}") from None
        with fh:
            while data := fh.read(chunk):
                yield data

    def verified_chunks(self, digest: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The blob's bytes in chunks; raises BlobCorruptError after the last chunk when they
        do not hash to ``digest`` (a consumer must discard what it got)."""
        h = hashlib.sha256()
        yield from _hash_chunks(self.iter_chunks(digest, chunk), h)
        if "sha256:" + h.hexdigest() != digest:
            raise BlobCorruptError(f"blob {digest} in {self.url} is corrupt: its bytes hash "
                                   f"to sha256:{h.hexdigest()}")

    def get(self, digest: str) -> bytes:
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store at {self.root}") from None
        if of_bytes(data) != digest:
            raise BlobCorruptError(f"blob {digest} is corrupt: its bytes hash to {of_bytes(data)}")
        return data

    def verify(self, digest: str) -> str:
        """'present' (bytes match), 'missing' or 'corrupt', reading in chunks."""
        h = hashlib.sha256()
        try:
            for chunk in self.iter_chunks(digest):
                h.update(chunk)
        except NotFoundError:
            return "missing"
        return "present" if "sha256:" + h.hexdigest() == digest else "corrupt"

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest`` (streamed, verified; ``dest`` appears only whole and
        correct)."""
        write_verified(self.verified_chunks(digest), Path(dest))

    # --- named objects (archive files: keys the caller chooses, content checked by it) -----
    def put_file_at(self, key: str, path: Path, *, move: bool = False) -> None:
        """Put the file ``path`` at ``key`` under the root, whole or absent (a temporary
        file renamed into place); ``move``: rename ``path`` itself (same filesystem)."""
        final = self.root / check_key(key)
        if move:
            self._commit(Path(path), final)
            return
        fd, tmp = self._tmp()
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while data := src.read(CHUNK):
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def open_at(self, key: str):
        """The object at ``key``, open for reading (NotFoundError when absent)."""
        try:
            return open(self.root / check_key(key), "rb")  # noqa: SIM115 - the caller closes
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"{key} is not in the store at {self.root}") from None

    def scratch_dir(self) -> Path:
        """Where to write a file that :meth:`put_file_at` will move into place."""
        tmpdir = self.root / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        return tmpdir

    def delete(self, digest: str) -> bool:
        path = self.path_of(digest)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def digests(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for sub in sorted(base.iterdir()):
            for f in sorted(sub.iterdir()):
                yield "sha256:" + sub.name + f.name

    def size(self, digest: str) -> int | None:
        try:
            return self.path_of(digest).stat().st_size
        except FileNotFoundError:
            return None


def write_verified(chunks: Iterable[bytes], dest: Path) -> None:
    """Write ``chunks`` (a :meth:`verified_chunks` stream) to a temporary file beside
    ``dest`` and rename it into place only when the stream ended without error."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["BlobStore", "Staged", "blob_key", "check_key", "is_remote", "open_blob_store", "stat_signature",
           "write_verified"]
