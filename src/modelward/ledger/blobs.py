"""A content-addressed blob store on the filesystem: ``<root>/sha256/ab/cdef…``.

Writes go to a temporary file that is fsynced and renamed into place, so a blob is either
whole or absent; every read re-hashes the bytes and raises BlobCorruptError on mismatch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..digest import check_digest, of_bytes
from ..errors import BlobCorruptError, NotFoundError

_CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, digest: str) -> Path:
        check_digest(digest)
        hexd = digest[7:]
        return self.root / "sha256" / hexd[:2] / hexd[2:]

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
        fd, tmp = self._tmp()
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._commit(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

    def put_file(self, path: Path, expected: str | None = None) -> str:
        """Copy a file in, hashing as it streams; ``expected`` guards against a file that
        changed since it was digested."""
        fd, tmp = self._tmp()
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + h.hexdigest()
            if expected is not None and digest != expected:
                raise BlobCorruptError(f"{path} changed while it was being stored "
                                       f"({expected} became {digest})")
            final = self.path_of(digest)
            if not final.is_file() or self.verify(digest) != "present":
                self._commit(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

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
        path = self.path_of(digest)
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return "missing"
        return "present" if "sha256:" + h.hexdigest() == digest else "corrupt"

    def copy_to(self, digest: str, dest: Path) -> None:
        data = self.get(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)

    def delete(self, digest: str) -> bool:
        path = self.path_of(digest)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def digests(self):
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


__all__ = ["BlobStore"]
