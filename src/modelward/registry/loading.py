"""Load what you resolve: an artifact's payload as a verified local file or directory.

* :func:`verified_blob` — a local file holding one blob whose bytes were hashed and matched
  its digest. For a directory blob store it is the blob file itself; for an object store,
  a copy downloaded into ``cache_dir/copies/`` (verified while downloading). The match is
  remembered with the file's stat signature (size, times, inode) in the verification cache,
  so the next load of an unchanged file costs one ``stat``; any write to the file changes
  its ctime and forces a rehash. A local file that no longer matches is refused
  (BlobCorruptError) — or, for an object store, fetched again, and refused when the object
  itself no longer matches.
* :func:`materialize` — the path a loader opens: for a file artifact, its verified blob;
  for a directory artifact, ``cache_dir/trees/<hex>/`` rebuilt from the manifest, each file
  a hard link to (or, across file systems, a copy of) its verified blob, checked against
  the signatures recorded when it was built.
* :func:`fetch` — a copy of the payload written to a directory of the caller's
  (``modelward fetch ALIAS --to DIR``).

Paths handed out are to be read, never written: a hard link shares its bytes with the blob
store, and the next load would refuse the changed payload.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import orjson

from .. import digest as dg
from ..errors import BlobCorruptError, NotFoundError, ValidationError
from ..ledger.artifacts import Artifact
from ..ledger.blobs import stat_signature, write_verified
from ..timefmt import now_us
from .verification import VerificationCache


def _local_store(store):
    blobs = store.blobs
    return blobs.copies if getattr(blobs, "remote", False) else blobs


def _cache(store, local, now: int) -> VerificationCache:
    ttl = store.settings.verify_cache_ttl or 0
    return VerificationCache(local.verified_dir, local.signature, ttl, now)


def verified_blob(store, digest: str, *, now: int | None = None) -> Path:
    """A local file whose bytes hash to ``digest`` (see the module docstring)."""
    now = now_us() if now is None else now
    blobs, local = store.blobs, _local_store(store)
    cache = _cache(store, local, now)
    remote = local is not blobs
    if remote and not local.has(digest):
        path = blobs.download(digest)  # raises BlobCorruptError / NotFoundError
        cache.put_payload(digest, {digest: local.signature(digest)}, now)
        return path
    path = local.path_of(digest)
    if cache.payload(digest) is not None:
        return path
    sig = local.signature(digest)
    if sig is None:
        raise NotFoundError(f"blob {digest} is not in the store at {blobs.url}",
                            hint="the payload was collected or never stored; register it "
                                 "again to restore it")
    status = local.verify(digest)
    if status == "corrupt":
        cache.drop_payload(digest)
        if not remote:
            raise BlobCorruptError(
                f"refused to load {digest}: the stored bytes no longer match the digest the "
                f"ledger records (blob store {blobs.url})",
                hint="the payload was changed in the store; restore it by registering the "
                     "original again (`modelward register … PATH`)")
        path = blobs.download(digest)  # the local copy was damaged: fetch it again
        sig = local.signature(digest)
    elif status == "missing":
        raise NotFoundError(f"blob {digest} is not in the store at {blobs.url}")
    cache.put_payload(digest, {digest: sig}, now)
    return path


def _manifest(store, art: Artifact) -> list[tuple[str, str]]:
    data = store.blobs.get(art.digest)  # verified on read
    entries = dg.parse_manifest(data)
    for rel, file_digest in entries:
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts or "\\" in rel:
            raise ValidationError(f"the manifest of {art.digest} names an unsafe path {rel!r}",
                                  field="manifest")
        dg.check_digest(file_digest)
    return entries


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links not allowed: a verified copy
        shutil.copyfile(src, dest)


def _tree_ok(tree: Path, record: Path, ttl: int, now: int) -> bool:
    try:
        entry = orjson.loads(record.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        return False
    if ttl and not 0 <= now - int(entry.get("at", 0)) <= ttl:
        return False
    return all(stat_signature(tree / rel) == sig for rel, sig in entry["files"].items())


def _payload_artifact(art: Artifact) -> None:
    if art.payload == "vendor":
        raise ValidationError(f"{art.digest} is the hosted model {art.hosted_id}: its payload "
                              "is held by the vendor, there is nothing to load",
                              field="artifact")
    if art.payload != "blob":
        raise ValidationError(f"{art.digest} ({art.name}) was registered without a payload "
                              "(--no-store)", field="artifact",
                              hint="register it again with its files to store them")


def materialize(store, art: Artifact, *, now: int | None = None) -> Path:
    """The verified local path of ``art``'s payload: a file, or a directory tree."""
    _payload_artifact(art)
    now = now_us() if now is None else now
    if not art.is_directory:
        return verified_blob(store, art.digest, now=now)
    trees = store.settings.cache_path / "trees"
    hexd = art.digest[7:]
    tree, record = trees / hexd, trees / f"{hexd}.json"
    ttl = store.settings.verify_cache_ttl or 0
    if tree.is_dir() and _tree_ok(tree, record, ttl, now):
        return tree
    files = _manifest(store, art)
    trees.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=trees, prefix=f".{hexd[:12]}-"))
    try:
        sigs = {}
        for rel, file_digest in files:
            target = tmp / rel
            _link_or_copy(verified_blob(store, file_digest, now=now), target)
            sigs[rel] = stat_signature(target)
        fd, name = tempfile.mkstemp(dir=trees, prefix=".rec-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps({"at": now, "digest": art.digest, "files": sigs}))
        os.replace(name, record)
        if tree.exists():
            shutil.rmtree(tree, ignore_errors=True)  # stale or changed: rebuilt above
        try:
            os.rename(tmp, tree)
        except OSError:  # another process built it meanwhile: use it if it checks out
            if not _tree_ok(tree, record, ttl, now):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


def read_bytes(store, art: Artifact) -> bytes:
    """The payload of a file artifact, read whole and verified."""
    _payload_artifact(art)
    if art.is_directory:
        raise ValidationError(f"{art.digest} ({art.name}) is a directory: load it with "
                              ".path()", field="artifact")
    return store.blobs.get(art.digest)


def fetch(store, art: Artifact, dest: Path, *, name: str | None = None) -> Path:
    """Write a verified copy of ``art``'s payload into directory ``dest``; returns the file
    or directory written (named ``name``, default the artifact's name)."""
    _payload_artifact(art)
    dest = Path(dest)
    label = (name or art.name or art.digest[7:19]).replace("/", "_").replace("\\", "_")
    if label in ("", ".", ".."):
        label = art.digest[7:19]
    target = dest / label
    if not art.is_directory:
        write_verified(store.blobs.verified_chunks(art.digest), target)
        return target
    files = _manifest(store, art)
    staging = Path(tempfile.mkdtemp(dir=_ensure(dest), prefix=f".{label}-"))
    try:
        for rel, file_digest in files:
            write_verified(store.blobs.verified_chunks(file_digest), staging / rel)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = ["fetch", "materialize", "read_bytes", "verified_blob"]
