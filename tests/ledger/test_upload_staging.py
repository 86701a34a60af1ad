"""A streamed upload (artifacts.stage_upload / record_upload) on a blob directory and on an
S3 object store: hashed while written, put in place only when recorded, and nothing left
when the stream fails, the upload is dropped, or its row cannot be written — while a blob
that was already there before a failed registration stays."""

from __future__ import annotations

import pytest

import modelward
from modelward.digest import of_bytes
from modelward.errors import ValidationError
from modelward.ledger import artifacts


@pytest.fixture(params=["dir", "s3"])
def led(request, tmp_path):
    over = {"database_url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    if request.param == "s3":
        over["blob_url"] = request.getfixturevalue("s3_url")
    opened = modelward.open(str(tmp_path / "home"), **over)
    yield opened
    opened.close()


def everything(store) -> list[str]:
    """Blobs, and any staged bytes, in the store."""
    blobs = store.blobs
    if blobs.remote:
        return sorted(str(m["path"]) for batch in blobs._ob.list(blobs._store)
                      for m in batch)
    root = blobs.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def pieces(data: bytes, size: int = 1 << 20):
    for i in range(0, len(data), size):
        yield data[i:i + size]


DATA = bytes(range(256)) * 12_000  # about 3 MiB


def test_a_recorded_upload_is_stored_under_its_digest_and_nothing_else(led):
    store = led.store
    with artifacts.stage_upload(store, "model", pieces(DATA), filename="w.bin") as up:
        assert up.digest == of_bytes(DATA) and up.size == len(DATA)
        assert not store.blobs.has(up.digest)  # staged, not yet in place
        reg = artifacts.record_upload(store, up, name="w", meta={"uploaded_as": "w.bin"})
    assert reg.created and reg.artifact.size == len(DATA)
    assert store.blobs.get(up.digest) == DATA
    assert len(everything(store)) == 1


def test_a_stream_that_fails_midway_leaves_nothing(led):
    store = led.store

    def broken():
        yield DATA[:1 << 20]
        yield DATA[1 << 20:2 << 20]
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        artifacts.stage_upload(store, "model", broken(), filename="w.bin")
    assert everything(store) == []


def test_an_upload_not_recorded_is_discarded(led):
    store = led.store
    with artifacts.stage_upload(store, "model", pieces(DATA), filename="w.bin"):
        assert everything(store) != []  # the staged bytes
    assert everything(store) == []


def test_a_row_that_cannot_be_written_takes_its_new_blob_with_it(led):
    store = led.store
    with artifacts.stage_upload(store, "model", pieces(DATA), filename="w.bin") as up, \
            pytest.raises(ValidationError) as err:
        artifacts.record_upload(store, up, name="n" * 300)
    assert err.value.field == "name"
    assert everything(store) == []
    with led.store.read() as conn:
        assert artifacts.list_artifacts(conn) == []


def test_a_blob_that_was_there_before_a_failed_registration_stays(led):
    store = led.store
    digest = store.blobs.put_bytes(DATA)  # e.g. a file of a registered directory
    with artifacts.stage_upload(store, "model", pieces(DATA), filename="w.bin") as up, \
            pytest.raises(ValidationError):
        artifacts.record_upload(store, up, name="n" * 300)
    assert store.blobs.get(digest) == DATA
    assert len(everything(store)) == 1


def test_prompts_are_stored_canonical_and_store_false_keeps_only_the_digest(led):
    store = led.store
    text = b"Answer briefly.\r\n"
    with artifacts.stage_upload(store, "prompt", [text], filename="p.txt") as up:
        reg = artifacts.record_upload(store, up, name="p")
    assert store.blobs.get(reg.artifact.digest) == b"Answer briefly.\n"
    with artifacts.stage_upload(store, "model", pieces(DATA), filename="w.bin",
                                store_payload=False) as up:
        reg = artifacts.record_upload(store, up, name="w")
    assert reg.artifact.payload == "none" and not store.blobs.has(reg.artifact.digest)
    with pytest.raises(ValidationError) as err:
        artifacts.stage_upload(store, "prompt", [b"\xff\xfe"], filename="p.txt")
    assert err.value.field == "file"
