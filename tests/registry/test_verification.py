"""The verification cache trusts a record only while files are unchanged and it is fresh."""

import os
import time

from modelward.ledger.blobs import BlobStore
from modelward.registry.verification import VerificationCache, stat_signature

HOUR = 3_600_000_000


def _setup(tmp_path, ttl=HOUR, now=10 * HOUR):
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.put_bytes(b"checkpoint")
    cache = VerificationCache(tmp_path / "blobs" / "verified", blobs.signature, ttl, now)
    sig = stat_signature(blobs.path_of(digest))
    return blobs, digest, cache, sig


def test_a_fresh_record_of_unchanged_files_is_trusted(tmp_path):
    blobs, digest, cache, sig = _setup(tmp_path)
    assert cache.payload(digest) is None
    cache.put_payload(digest, {digest: sig}, 10 * HOUR - 5)
    assert cache.payload(digest) == {"at": 10 * HOUR - 5, "blobs": {digest: sig}}


def test_any_rewrite_of_the_file_invalidates_it(tmp_path):
    blobs, digest, cache, sig = _setup(tmp_path)
    cache.put_payload(digest, {digest: sig}, 10 * HOUR)
    time.sleep(0.01)
    path = blobs.path_of(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"checkpoint")  # the same bytes written again: ctime moves
    assert cache.payload(digest) is None


def test_it_expires_after_the_ttl_and_a_zero_ttl_disables_it(tmp_path):
    blobs, digest, cache, sig = _setup(tmp_path)
    cache.put_payload(digest, {digest: sig}, 10 * HOUR - HOUR - 1)
    assert cache.payload(digest) is None
    off = VerificationCache(tmp_path / "blobs" / "verified", blobs.signature, 0, 10 * HOUR)
    off.put_payload(digest, {digest: sig}, 10 * HOUR)
    assert off.payload(digest) is None and cache.payload(digest) is None
    cache.put_payload(digest, {digest: sig}, 10 * HOUR)
    assert cache.payload(digest) is not None
    cache.drop_payload(digest)
    assert cache.payload(digest) is None


def test_garbage_and_unwritable_caches_are_only_misses(tmp_path):
    blobs, digest, cache, sig = _setup(tmp_path)
    cache.put_block(3, {"at": 10 * HOUR, "root": "ab"})
    assert cache.block(3) == {"at": 10 * HOUR, "root": "ab"}
    (tmp_path / "blobs" / "verified" / "blocks" / "3").write_bytes(b"{not json")
    assert cache.block(3) is None
    (tmp_path / "blobs" / "verified" / "blocks" / "3").write_bytes(b'{"root": "ab"}')
    assert cache.block(3) is None  # no time: not trusted
    # a cache that cannot be written (here: its directory would sit under a file, which
    # fails even for root) is a cache that never hits, not an error
    (tmp_path / "plain-file").write_text("x")
    stuck = VerificationCache(tmp_path / "plain-file" / "verified", blobs.signature, HOUR, 10 * HOUR)
    stuck.put_block(1, {"at": 10 * HOUR})
    stuck.put_payload(digest, {digest: sig}, 10 * HOUR)
    assert stuck.block(1) is None and stuck.payload(digest) is None
