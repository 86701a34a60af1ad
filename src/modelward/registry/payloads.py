"""Is an artifact's payload still there and intact? Full, cached and quick answers.

* full (default): every blob is rehashed; a match is remembered in the verification cache
  so the next full check of unchanged files costs a few ``stat`` calls;
* quick: presence and size only (a cached full verification is still reported as such).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import digest as dg
from ..errors import BlobCorruptError, NotFoundError
from ..ledger.artifacts import Artifact
from ..timefmt import iso
from .verification import VerificationCache


@dataclass
class PayloadCheck:
    """``status``: present, missing, corrupt, vendor or not-stored. ``how`` a present
    payload was checked: "rehashed" (now), "cached" (rehashed at ``verified_at``, files
    unchanged since) or "size" (quick: present with the registered size, not rehashed)."""

    status: str
    how: str | None = None
    verified_at: int | None = None
    bytes: int | None = None
    detail: str | None = None
    deleted_at: int | None = None
    hosted_id: str | None = None
    retires_at: int | None = None
    retired: bool | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("present", "not-stored") or (
            self.status == "vendor" and not self.retired)

    def to_dict(self) -> dict:
        return {"status": self.status, "how": self.how, "verified_at": iso(self.verified_at),
                "bytes": self.bytes, "detail": self.detail, "deleted_at": iso(self.deleted_at),
                "hosted_id": self.hosted_id, "retires_at": iso(self.retires_at),
                "retired": self.retired}

    def describe(self) -> str:
        """One line for people."""
        if self.status == "present":
            if self.how == "rehashed":
                return "present, verified (rehashed now)"
            if self.how == "cached":
                return (f"present, verified at {iso(self.verified_at)} "
                        "(cached: files unchanged since)")
            return "present, size matches (quick: not rehashed)"
        if self.status == "vendor":
            text = f"held by the vendor as {self.hosted_id}"
            if self.retires_at is None:
                return text + "; no retirement date recorded"
            if self.retired:
                return text + f"; RETIRED at {iso(self.retires_at)} (past)"
            return text + f"; retires at {iso(self.retires_at)}"
        if self.status == "not-stored":
            return "not stored (registered without a payload)"
        text = self.status.upper()
        if self.detail:
            text += f": {self.detail}"
        if self.deleted_at is not None:
            text += f" (deleted by gc at {iso(self.deleted_at)})"
        return text


def manifest_files(store, art: Artifact) -> list[str] | None:
    """The file blobs a directory artifact's manifest lists; None when it cannot be read."""
    try:
        return [d for _p, d in dg.parse_manifest(store.blobs.get(art.digest))]
    except (NotFoundError, BlobCorruptError, UnicodeDecodeError):
        return None


def check_payload(store, art: Artifact, *, verify: bool = True,
                  cache: VerificationCache | None = None, now: int) -> PayloadCheck:
    """Check ``art``'s payload; ``verify=False`` is the quick check."""
    if art.payload == "vendor":
        retired = None if art.retires_at is None else art.retires_at <= now
        return PayloadCheck("vendor", hosted_id=art.hosted_id, retires_at=art.retires_at,
                            retired=retired)
    if art.payload != "blob":
        return PayloadCheck("not-stored")
    if cache is not None:
        entry = cache.payload(art.digest)
        if entry is not None:
            size = sum(sig[0] for sig in entry["blobs"].values())
            return PayloadCheck("present", "cached", entry["at"], size)
    check = _full(store, art, cache, now) if verify else _quick(store, art)
    if check.status != "present":
        check.deleted_at = art.payload_deleted_at
        if cache is not None:
            cache.drop_payload(art.digest)
    return check


def _quick(store, art: Artifact) -> PayloadCheck:
    signature = store.blobs.signature  # a stat locally, a HEAD request on an object store
    sig = signature(art.digest)
    if sig is None:
        return PayloadCheck("missing", detail="the blob is not in the store"
                            if not art.is_directory
                            else "the directory's manifest is not in the store")
    if not art.is_directory:
        if art.size is not None and sig[0] != art.size:
            return PayloadCheck("corrupt", detail=f"{sig[0]} bytes on disk, registered with "
                                f"{art.size}")
        return PayloadCheck("present", "size", bytes=sig[0])
    files = manifest_files(store, art)
    if files is None:
        return PayloadCheck("corrupt", detail="the directory's manifest does not match its digest")
    total, gone = 0, 0
    for f in files:
        fsig = signature(f)
        if fsig is None:
            gone += 1
        else:
            total += fsig[0]
    if gone:
        return PayloadCheck("missing", detail=f"{gone} of {len(files)} files are gone")
    if art.size is not None and total != art.size:
        return PayloadCheck("corrupt", detail=f"its files hold {total} bytes, registered with "
                            f"{art.size}")
    return PayloadCheck("present", "size", bytes=total + sig[0])


def _full(store, art: Artifact, cache: VerificationCache | None, now: int) -> PayloadCheck:
    blobs = store.blobs
    signatures: dict[str, list[int]] = {}

    def rehash(digest: str) -> str:
        sig = blobs.signature(digest)  # before reading: a later write shows
        if sig is None:
            return "missing"
        status = blobs.verify(digest)
        if status == "present":
            signatures[digest] = sig
        return status

    status = rehash(art.digest)
    if status != "present":
        what = "the directory's manifest" if art.is_directory else "the blob"
        detail = (f"{what} is not in the store" if status == "missing"
                  else f"{what}'s bytes no longer match its digest")
        return PayloadCheck(status, detail=detail)
    if art.is_directory:
        files = manifest_files(store, art) or []
        bad = {"missing": 0, "corrupt": 0}
        for f in files:
            st = rehash(f)
            if st != "present":
                bad[st] += 1
        if bad["corrupt"]:
            return PayloadCheck("corrupt", detail=f"{bad['corrupt']} of {len(files)} files no "
                                "longer match their digests")
        if bad["missing"]:
            return PayloadCheck("missing", detail=f"{bad['missing']} of {len(files)} files "
                                "are gone")
    if cache is not None:
        cache.put_payload(art.digest, signatures, now)
    return PayloadCheck("present", "rehashed", now, sum(s[0] for s in signatures.values()))
