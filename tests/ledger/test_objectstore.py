"""The object-store blob store against a real S3-compatible server (moto's standalone server
over HTTP), with obstore as the client and boto3 as the outside party."""

from __future__ import annotations

import hashlib
import os

import pytest

from modelward import digest as dg
from modelward.errors import BlobCorruptError, ConfigError, NotFoundError
from modelward.ledger import objectstore
from modelward.ledger.blobs import BlobStore, blob_key, open_blob_store
from modelward.registry.migrate import migrate


def _bucket_key(url: str, digest: str) -> tuple[str, str]:
    bucket, _, prefix = url[len("s3://"):].partition("/")
    return bucket, f"{prefix}/{blob_key(digest)}"


def test_bytes_round_trip_verify_list_and_delete(s3_url, tmp_path):
    blobs = open_blob_store(s3_url, cache_dir=tmp_path / "cache")
    assert blobs.remote and blobs.url == s3_url
    a, b = blobs.put_bytes(b"alpha"), blobs.put_bytes(b"beta")
    assert a == dg.of_bytes(b"alpha")
    assert blobs.put_bytes(b"alpha") == a  # idempotent
    assert blobs.get(a) == b"alpha" and blobs.verify(b) == "present"
    assert blobs.has(a) and blobs.size(b) == 4
    assert list(blobs.digests()) == sorted([a, b])
    sig = blobs.signature(a)
    assert sig[0] == 5 and sig[1]  # size and ETag
    assert blobs.delete(a) and not blobs.has(a) and blobs.verify(a) == "missing"
    assert not blobs.delete(a)
    with pytest.raises(NotFoundError):
        blobs.get(a)
    assert blobs.signature(a) is None


def test_a_large_file_goes_up_in_parts_and_comes_back_verified(s3_url, s3_server, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(objectstore, "MULTIPART_THRESHOLD", 1 << 20)
    monkeypatch.setattr(objectstore, "PART_SIZE", 5 << 20)  # S3's smallest part
    data = os.urandom(12 << 20)
    src = tmp_path / "weights.bin"
    src.write_bytes(data)
    blobs = open_blob_store(s3_url, cache_dir=tmp_path / "cache")
    digest = blobs.put_file(src)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    bucket, key = _bucket_key(s3_url, digest)
    head = s3_server.client().head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # a three-part multipart upload
    out = tmp_path / "out" / "w.bin"
    blobs.copy_to(digest, out)
    assert out.read_bytes() == data
    local = blobs.local_path(digest)  # a verified local copy, kept by digest
    assert local.read_bytes() == data and str(local).startswith(str(tmp_path / "cache"))


def test_a_changed_object_is_refused_on_read(s3_url, s3_server, tmp_path):
    blobs = open_blob_store(s3_url, cache_dir=tmp_path / "cache")
    digest = blobs.put_bytes(b"the real template")
    before = blobs.signature(digest)
    bucket, key = _bucket_key(s3_url, digest)
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"the swapped template")
    assert blobs.signature(digest) != before  # what the verification cache keys on
    assert blobs.verify(digest) == "corrupt"
    with pytest.raises(BlobCorruptError, match="is corrupt"):
        blobs.get(digest)
    with pytest.raises(BlobCorruptError):
        blobs.copy_to(digest, tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing half-written
    with pytest.raises(BlobCorruptError):
        blobs.local_path(digest)
    assert not blobs.copies.has(digest)
    blobs.put_bytes(b"the real template")  # re-storing repairs it
    assert blobs.get(digest) == b"the real template"


def test_a_file_that_changed_while_uploading_is_not_kept(s3_url, tmp_path):
    blobs = open_blob_store(s3_url, cache_dir=tmp_path / "cache")
    src = tmp_path / "f.bin"
    src.write_bytes(b"new bytes")
    wrong = dg.of_bytes(b"old bytes")
    with pytest.raises(BlobCorruptError, match="changed while it was being stored"):
        blobs.put_file(src, expected=wrong)
    assert not blobs.has(wrong)


def test_migrate_copies_and_verifies_every_blob_both_ways(s3_url, s3_server, tmp_path):
    local = BlobStore(tmp_path / "blobs")
    digests = [local.put_bytes(f"prompt {i}".encode()) for i in range(20)]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    digests.append(local.put_file(big))
    remote = open_blob_store(s3_url, cache_dir=tmp_path / "cache")
    report = migrate(local, remote)
    assert report.ok and report.blobs == 21 and report.copied == 21
    assert report.verified == 21 and report.bytes_copied == 3 * (1 << 20) + sum(
        len(f"prompt {i}") for i in range(20))
    assert sorted(remote.digests()) == sorted(digests)
    again = migrate(local, remote)  # idempotent: nothing copied twice
    assert (again.copied, again.already, again.ok) == (0, 21, True)
    # a corrupt source blob is reported, never copied
    local.path_of(digests[0]).write_bytes(b"bit rot")
    remote.delete(digests[0])
    report = migrate(local, remote)
    assert report.corrupt_source == [digests[0]] and not report.ok
    assert not remote.has(digests[0])
    # and back from the object store into a fresh directory
    back = BlobStore(tmp_path / "back")
    report = migrate(remote, back)
    assert report.ok and sorted(back.digests()) == sorted(digests[1:])


def test_a_malformed_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a usable object-store URL"):
        open_blob_store("s3://", cache_dir=tmp_path)
