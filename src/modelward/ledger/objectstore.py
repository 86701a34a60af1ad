"""Blobs in an object store (S3 and S3-compatible, Google Cloud Storage, Azure Blob
Storage) through obstore: one maintained client for every cloud, chosen by the benchmark
in bench/blobstore.py (docs/team.md gives the figures).

``s3://bucket/prefix``, ``gs://bucket/prefix`` and ``az://container/prefix`` (also
``abfs://``, ``https://…`` forms obstore recognises) name a store. Credentials and
endpoints come from each cloud's standard environment — ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``
(``AWS_ALLOW_HTTP=true`` for a plain-HTTP endpoint), web identity and instance metadata;
``GOOGLE_APPLICATION_CREDENTIALS`` / ``GOOGLE_SERVICE_ACCOUNT``; ``AZURE_STORAGE_ACCOUNT_NAME``
with ``AZURE_STORAGE_ACCOUNT_KEY`` or a service principal — never from modelward settings.

Uploads stream from the file in parts (multipart above ``MULTIPART_THRESHOLD``), hashing
as they go; a PUT or a completed multipart upload is atomic, so a blob is either whole or
absent. Every read re-hashes. Local copies (what :meth:`local_path` hands to loaders and
replay) are kept, verified, in ``cache_dir/copies/<store>/``, and the verification cache
of this store in ``cache_dir/verified/<store>/``, keyed by the object's size, ETag and
modification time (any overwrite changes them).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from ..errors import BlobCorruptError, ConfigError, ModelwardError, NotFoundError, StorageError
from .blobs import CHUNK, BlobStore, Staged, blob_key, check_key

# obstore's default 30 s covers a whole request, body included: a 2 GB download at less
# than 70 MB/s, or a server assembling a large multipart upload, would be cut off.
CLIENT_OPTIONS = {"timeout": "1800s", "connect_timeout": "30s"}
MULTIPART_THRESHOLD = 64 << 20


def client_options() -> dict:
    """obstore's HTTP options: longer timeouts, and plain HTTP only when the environment
    allows it (``AWS_ALLOW_HTTP``/``ALLOW_HTTP`` true, as obstore reads it without options)."""
    options = dict(CLIENT_OPTIONS)
    for var in ("AWS_ALLOW_HTTP", "ALLOW_HTTP", "GOOGLE_ALLOW_HTTP", "AZURE_ALLOW_HTTP"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes"):
            options["allow_http"] = True
    return options  # bytes; smaller payloads go up in one PUT
PART_SIZE = 16 << 20  # S3 allows 10,000 parts: a part grows for payloads past 160 GB
MAX_PARTS = 9_000


def _obstore():
    try:
        import obstore
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("an object-store blob_url needs the obstore package",
                          hint="pip install 'modelward[objectstore]'") from None
    return obstore


def _redacted(url: str) -> str:
    return url.split("?", 1)[0]


class ObjectBlobStore:
    """Blobs under a prefix of a bucket or container."""

    remote = True

    def __init__(self, url: str, *, cache_dir: Path) -> None:
        ob = _obstore()
        from obstore.store import from_url

        self.url = _redacted(url.rstrip("/"))
        self._ob = ob
        from obstore.exceptions import NotFoundError as ObNotFound

        # obstore raises FileNotFoundError for a missing object (its NotFoundError too)
        self._not_found = (ObNotFound, FileNotFoundError)
        try:
            self._store = from_url(url, client_options=client_options())
        except Exception as exc:  # obstore raises its own errors for a malformed URL
            raise ConfigError(f"blob_url {self.url} is not a usable object-store URL: "
                              f"{_first_line(exc)}",
                              hint="e.g. s3://bucket/prefix, gs://bucket/prefix, "
                                   "az://container/prefix") from None
        tag = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.cache_dir = Path(cache_dir)
        #: the verified local copies (a directory blob store of its own)
        self.copies = BlobStore(self.cache_dir / "copies" / tag)
        self._verified_dir = self.cache_dir / "verified" / tag

    # --- plumbing --------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (*self._not_found, ModelwardError):
            raise  # ours: e.g. BlobCorruptError from a verified stream being uploaded
        except Exception as exc:
            raise StorageError(f"the blob store {self.url} failed to {what}: "
                               f"{_first_line(exc)}",
                               hint="check the credentials and endpoint in the environment "
                                    "(docs/team.md)") from None

    @property
    def verified_dir(self) -> Path:
        return self._verified_dir

    def _head(self, digest: str) -> dict | None:
        try:
            return self._call("read", self._ob.head, self._store, blob_key(digest))
        except self._not_found:
            return None

    # --- reading -----------------------------------------------------------------------
    def signature(self, digest: str) -> list | None:
        meta = self._head(digest)
        if meta is None:
            return None
        modified = meta.get("last_modified")
        stamp = int(modified.timestamp() * 1e6) if isinstance(modified, datetime) else None
        return [meta.get("size"), meta.get("e_tag"), stamp, meta.get("version")]

    def has(self, digest: str) -> bool:
        return self._head(digest) is not None

    def size(self, digest: str) -> int | None:
        meta = self._head(digest)
        return None if meta is None else meta.get("size")

    def iter_chunks(self, digest: str, chunk: int = CHUNK) -> Iterator[bytes]:
        key = blob_key(digest)
        try:
            result = self._call("read", self._ob.get, self._store, key)
        except self._not_found:
            raise NotFoundError(f"blob {digest} is not in the store at {self.url}") from None
        try:
            for part in result.stream(min_chunk_size=chunk):
                yield bytes(part)
        except Exception as exc:
            raise StorageError(f"reading blob {digest} from {self.url} failed: "
                               f"{_first_line(exc)}") from None

    def verified_chunks(self, digest: str, chunk: int = CHUNK) -> Iterator[bytes]:
        h = hashlib.sha256()
        for part in self.iter_chunks(digest, chunk):
            h.update(part)
            yield part
        if "sha256:" + h.hexdigest() != digest:
            raise BlobCorruptError(f"blob {digest} in {self.url} is corrupt: its bytes hash "
                                   f"to sha256:{h.hexdigest()}")

    def get(self, digest: str) -> bytes:
        return b"".join(self.verified_chunks(digest))

    def verify(self, digest: str) -> str:
        h = hashlib.sha256()
        try:
            for part in self.iter_chunks(digest):
                h.update(part)
        except NotFoundError:
            return "missing"
        return "present" if "sha256:" + h.hexdigest() == digest else "corrupt"

    def copy_to(self, digest: str, dest: Path) -> None:
        from .blobs import write_verified

        write_verified(self.verified_chunks(digest), Path(dest))

    def local_path(self, digest: str) -> Path:
        """A local copy of the blob, downloaded (and verified while downloading) the first
        time; later calls return the copy as it is now (callers that trust it verify it)."""
        if not self.copies.has(digest):
            self.download(digest)
        return self.copies.path_of(digest)

    def download(self, digest: str) -> Path:
        """(Re)fetch the local copy, verified; raises BlobCorruptError when the object's
        bytes no longer match."""
        self.copies.put_stream(self.verified_chunks(digest), expected=digest,
                               what=f"blob {digest} in {self.url}")
        return self.copies.path_of(digest)

    # --- writing -----------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        from ..digest import of_bytes

        digest = of_bytes(data)
        meta = self._head(digest)
        if meta is not None and meta.get("size") == len(data) and self.verify(digest) == "present":
            return digest
        self._call("write", self._ob.put, self._store, blob_key(digest), data)
        return digest

    def put_file(self, path: Path, expected: str | None = None) -> str:
        from ..digest import of_file

        path = Path(path)
        digest = expected or of_file(path)  # the key must be known before the upload
        size = path.stat().st_size
        meta = self._head(digest)
        if meta is not None and meta.get("size") == size and self.verify(digest) == "present":
            return digest
        with open(path, "rb") as src:
            return self.put_stream(iter(lambda: src.read(CHUNK), b""), expected=digest,
                                   what=str(path), size=size)

    def put_stream(self, chunks: Iterable[bytes], *, expected: str | None = None,
                   what: str = "the payload", size: int | None = None) -> str:
        """Upload ``chunks`` under ``expected`` (required: an object store cannot rename),
        hashing as they stream; multipart when ``size`` is unknown or large. An upload whose
        bytes do not hash to ``expected`` is deleted and raises BlobCorruptError."""
        if expected is None:
            data = b"".join(chunks)
            return self.put_bytes(data)
        h = hashlib.sha256()

        def hashed():
            for chunk in chunks:
                h.update(chunk)
                yield chunk

        key = blob_key(expected)
        multipart = size is None or size > MULTIPART_THRESHOLD
        part = max(PART_SIZE, -(-(size or 0) // MAX_PARTS))
        if multipart:
            self._call("write", self._ob.put, self._store, key, hashed(), use_multipart=True,
                       chunk_size=part, max_concurrency=8)
        else:
            self._call("write", self._ob.put, self._store, key, b"".join(hashed()),
                       use_multipart=False)
        digest = "sha256:" + h.hexdigest()
        if digest != expected:
            self.delete(expected)
            raise BlobCorruptError(f"{what} changed while it was being stored "
                                   f"({expected} became {digest})")
        return digest

    def stage(self, chunks: Iterable[bytes]) -> Staged:
        """Upload ``chunks`` in parts under ``incoming/<random>`` (the digest is unknown until
        the last byte), hashing as they stream; committing copies the object to its blob
        key inside the store and deletes the staged one. A failed or discarded upload
        leaves no object (an unfinished multipart upload is aborted)."""
        h, counted, failed = hashlib.sha256(), [0], []
        key = f"incoming/{uuid.uuid4().hex}"

        def hashed():
            try:
                for chunk in chunks:
                    h.update(chunk)
                    counted[0] += len(chunk)
                    yield chunk
            except BaseException as exc:  # obstore would wrap it: keep the source's own
                failed.append(exc)
                raise

        def drop() -> None:
            try:
                self._ob.delete(self._store, key)
            except Exception:  # noqa: BLE001 - absent already; nothing else to undo
                pass

        try:
            self._call("write", self._ob.put, self._store, key, hashed(), use_multipart=True,
                       chunk_size=PART_SIZE, max_concurrency=4)
        except BaseException:
            drop()
            if failed:
                raise failed[0] from None
            raise
        digest = "sha256:" + h.hexdigest()

        def commit() -> bool:
            try:
                meta = self._head(digest)
                if (meta is not None and meta.get("size") == counted[0]
                        and self.verify(digest) == "present"):
                    return False
                self._call("write", self._ob.copy, self._store, key, blob_key(digest))
                return True
            finally:
                drop()

        return Staged(digest, counted[0], commit, drop)

    # --- named objects (archive files: keys the caller chooses, content checked by it) -----
    def put_file_at(self, key: str, path: Path, *, move: bool = False) -> None:
        """Upload the file ``path`` to ``key``, streamed from disk (multipart above
        ``MULTIPART_THRESHOLD``); a PUT or completed multipart upload is whole or absent.
        ``move`` is accepted for symmetry with the directory store (the file stays)."""
        del move
        key = check_key(key)
        size = Path(path).stat().st_size
        with open(path, "rb") as src:
            if size > MULTIPART_THRESHOLD:
                part = max(PART_SIZE, -(-size // MAX_PARTS))
                self._call("write", self._ob.put, self._store, key,
                           iter(lambda: src.read(CHUNK), b""), use_multipart=True,
                           chunk_size=part, max_concurrency=8)
            else:
                self._call("write", self._ob.put, self._store, key, src.read(),
                           use_multipart=False)

    def open_at(self, key: str):
        """The object at ``key`` downloaded (streamed) into an anonymous temporary file,
        open for reading at its start (NotFoundError when absent)."""
        import tempfile

        key = check_key(key)
        try:
            result = self._call("read", self._ob.get, self._store, key)
        except self._not_found:
            raise NotFoundError(f"{key} is not in the store at {self.url}") from None
        fh = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
        try:
            for part in result.stream(min_chunk_size=CHUNK):
                fh.write(bytes(part))
        except Exception as exc:
            fh.close()
            raise StorageError(f"reading {key} from {self.url} failed: "
                               f"{_first_line(exc)}") from None
        fh.seek(0)
        return fh

    def scratch_dir(self) -> None:
        """None: files for :meth:`put_file_at` are written to the system temp directory."""
        return None

    def delete(self, digest: str) -> bool:
        existed = self.has(digest)
        if existed:
            self._call("delete", self._ob.delete, self._store, blob_key(digest))
        self.copies.delete(digest)
        return existed

    def digests(self) -> Iterator[str]:
        stream = self._call("list", self._ob.list, self._store, prefix="sha256/",
                            chunk_size=1000)
        found = []
        for batch in stream:
            for meta in batch:
                parts = str(meta["path"]).split("/")
                if len(parts) >= 3 and parts[-3] == "sha256" and len(parts[-2]) == 2:
                    found.append("sha256:" + parts[-2] + parts[-1])
        yield from sorted(found)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:300]


__all__ = ["ObjectBlobStore"]
