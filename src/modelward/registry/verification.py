"""The verification cache: what was fully verified, when, so repeated audits stay cheap.

Kept as small files beside the blobs, under ``<blob store>/verified/`` (for an object
store, under ``$MODELWARD_HOME/cache/verified/<store>/``, on each machine); deleting the
directory only makes the next audits slower. Two kinds of entries:

* ``payloads/<ab>/<cdef…>`` — an artifact whose blobs were rehashed and matched, with each
  blob's signature at that moment: for a file, (size, mtime, ctime, inode, device); for an
  object, (size, ETag, last-modified, version). An entry is trusted while every blob still
  shows the same signature and the entry is younger than ``verify_cache_ttl``. Any write to
  a file through the filesystem changes its ctime (which no user call can set back), and
  any overwrite of an object changes its ETag and last-modified time, so tampering is
  caught; silent media corruption that leaves the signature untouched is caught at the
  next full rehash, at the latest after the TTL.
* ``blocks/<number>`` — the subtree roots of a chain block recomputed in full, so later
  audits prove one decision against the sealed root without rehashing the whole block
  (see ``ledger/proofs.py``). Trusted only while they still hash to the sealed root, and
  for at most the TTL.

Writing is best effort: a read-only blob store simply never caches.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson

from ..ledger.blobs import stat_signature  # noqa: F401 - re-exported


class VerificationCache:
    """Entries under ``root``, trusted for ``ttl_us`` microseconds; ``signature`` maps a
    blob digest to what changes when it is rewritten (None when it is gone)."""

    def __init__(self, root: Path, signature, ttl_us: int, now: int, *,
                 write: bool = True) -> None:
        self.root = Path(root)
        self.signature = signature
        self.ttl_us = ttl_us
        self.now = now
        self.write = write

    @property
    def enabled(self) -> bool:
        return self.ttl_us > 0

    def _payload_path(self, digest: str) -> Path:
        hexd = digest[7:]
        return self.root / "payloads" / hexd[:2] / hexd[2:]

    def _block_path(self, number: int) -> Path:
        return self.root / "blocks" / str(int(number))

    def _read(self, path: Path) -> dict | None:
        if not self.enabled:
            return None
        try:
            entry = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("at"), int):
            return None
        if not 0 <= self.now - entry["at"] <= self.ttl_us:
            return None
        return entry

    def _write(self, path: Path, entry: dict) -> None:
        if not (self.enabled and self.write):
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(entry))
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written is only a slower cache

    # --- payloads ---------------------------------------------------------------------
    def payload(self, digest: str) -> dict | None:
        """A fresh entry whose every blob file is unchanged since it was verified."""
        entry = self._read(self._payload_path(digest))
        if entry is None or not isinstance(entry.get("blobs"), dict) or not entry["blobs"]:
            return None
        for blob, sig in entry["blobs"].items():
            if self.signature(blob) != sig:
                return None
        return entry

    def put_payload(self, digest: str, signatures: dict[str, list[int]], at: int) -> None:
        """Record that ``digest``'s blobs (blob digest -> signature before reading) matched."""
        signatures = {k: list(v) for k, v in signatures.items()}
        self._write(self._payload_path(digest), {"at": at, "blobs": signatures})

    def drop_payload(self, digest: str) -> None:
        try:
            self._payload_path(digest).unlink()
        except OSError:
            pass

    # --- chain blocks -----------------------------------------------------------------
    def block(self, number: int) -> dict | None:
        return self._read(self._block_path(number))

    def put_block(self, number: int, kept: dict) -> None:
        self._write(self._block_path(number), kept)

    def drop_block(self, number: int) -> None:
        """Forget a block found broken: later audits of any of its decisions recompute it."""
        try:
            self._block_path(number).unlink()
        except OSError:
            pass


def cache_for(store, now: int, *, enabled: bool = True) -> VerificationCache:
    """The cache of ``store``'s blob store with the ``verify_cache_ttl`` setting."""
    ttl = store.settings.verify_cache_ttl if enabled else 0
    return VerificationCache(store.blobs.verified_dir, store.blobs.signature, ttl or 0, now)
