"""Artifacts on every backend: content addressing, idempotent registration, payloads, lineage."""

from __future__ import annotations

import hashlib
import os

import pytest
import sqlalchemy as sa

from modelward import digest as dg
from modelward.errors import BlobCorruptError, NotFoundError, UnknownArtifactError, ValidationError
from modelward.ledger import artifacts
from modelward.ledger.schema import artifact_parents
from modelward.ledger.schema import artifacts as artifacts_table
from modelward.timefmt import parse_time


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rows(store, table=artifacts_table) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def make_tree(root, files: dict[str, bytes], order=None):
    for rel in order or files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[rel])
    return root


FILES = {"config.json": b'{"layers": 2}', "weights/part-1.bin": os.urandom(3000),
         "weights/part-0.bin": os.urandom(2000), "README": b"hi"}


def test_file(store, tmp_path):
    f = tmp_path / "model.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # several read chunks: digested as a stream
    f.write_bytes(data)
    reg = artifacts.register_path(store, "model", f, name=" chat ", version="1.2",
                                  owner="a@x.io", meta={"arch": "llama"},
                                  at=parse_time("2026-01-02T03:04:05Z"))
    a = reg.artifact
    assert reg.created and not reg.restored_payload
    assert a.digest == sha(data) and a.kind == "model" and a.name == "chat"
    assert (a.version, a.owner, a.size, a.payload, a.is_directory) == ("1.2", "a@x.io", len(data), "blob", False)
    assert a.source_path == str(f.resolve()) and a.meta == {"arch": "llama"}
    assert store.blobs.get(a.digest) == data
    with store.read() as conn:
        stored = artifacts.get(conn, a.digest)
    assert stored == a
    assert stored.to_dict()["created_at"] == "2026-01-02T03:04:05Z"
    assert artifacts.payload_status(store, stored) == "present"
    assert artifacts.blob_digests(store, stored) == [a.digest]


def test_directory_manifest(store, tmp_path):
    one = make_tree(tmp_path / "one", FILES)
    two = make_tree(tmp_path / "elsewhere" / "two", FILES, order=sorted(FILES, reverse=True))
    a = artifacts.register_path(store, "model", one, name="ckpt").artifact
    entries = sorted(FILES)
    manifest = "".join(f"{p}\t{sha(FILES[p])}\n" for p in entries).encode()
    assert a.digest == sha(manifest) and a.is_directory and a.size == sum(map(len, FILES.values()))
    # the same content elsewhere, written in another order, is the same artifact
    again = artifacts.register_path(store, "model", two, name="other-name")
    assert again.artifact.digest == a.digest and not again.created
    assert again.artifact.name == "ckpt"
    assert store.blobs.get(a.digest) == manifest
    for p in entries:
        assert store.blobs.get(sha(FILES[p])) == FILES[p]
    assert artifacts.blob_digests(store, a) == [a.digest] + [sha(FILES[p]) for p in entries]
    assert artifacts.payload_status(store, a) == "present"
    # one changed byte anywhere is another artifact
    changed = bytearray(FILES["weights/part-0.bin"])
    changed[100] ^= 1
    (two / "weights/part-0.bin").write_bytes(bytes(changed))
    assert artifacts.register_path(store, "model", two, name="ckpt2").artifact.digest != a.digest
    # a renamed file is another artifact too
    os.rename(one / "README", one / "README.md")
    assert artifacts.register_path(store, "model", one, name="ckpt3").artifact.digest != a.digest


def test_directory_payload_status_sees_each_file(store, tmp_path):
    a = artifacts.register_path(store, "dataset", make_tree(tmp_path / "d", FILES), name="d").artifact
    part = sha(FILES["weights/part-1.bin"])
    store.blobs.path_of(part).write_bytes(b"tampered")
    assert artifacts.payload_status(store, a) == "corrupt"
    store.blobs.delete(part)
    assert artifacts.payload_status(store, a) == "missing"
    reg = artifacts.register_path(store, "dataset", tmp_path / "d", name="d")
    assert reg.restored_payload and artifacts.payload_status(store, reg.artifact) == "present"


def test_prompt_crlf_and_bom_are_one_artifact(store, tmp_path):
    (tmp_path / "unix.txt").write_bytes(b"Answer {q}\nPolitely.\n")
    (tmp_path / "windows.txt").write_bytes(b"\xef\xbb\xbfAnswer {q}\r\nPolitely.\r\n")
    a = artifacts.register_path(store, "prompt", tmp_path / "unix.txt", name="p").artifact
    b = artifacts.register_path(store, "prompt", tmp_path / "windows.txt", name="p").artifact
    assert a.digest == b.digest == sha(b"Answer {q}\nPolitely.\n")
    assert store.blobs.get(a.digest) == b"Answer {q}\nPolitely.\n"
    assert rows(store) == 1
    # as a model (bytes, not text) the Windows file is different content
    m = artifacts.register_path(store, "model", tmp_path / "windows.txt", name="m").artifact
    assert m.digest == sha((tmp_path / "windows.txt").read_bytes())


def test_config_json_is_canonical(store, tmp_path):
    (tmp_path / "a.json").write_text('{"temperature": 0.2, "top_p": 1}')
    (tmp_path / "b.json").write_text('{\n  "top_p": 1,\n  "temperature": 0.2\n}\n')
    a = artifacts.register_path(store, "config", tmp_path / "a.json", name="gen").artifact
    b = artifacts.register_path(store, "config", tmp_path / "b.json", name="gen").artifact
    assert a.digest == b.digest == sha(b'{"temperature":0.2,"top_p":1}')
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValidationError, match="is not valid JSON") as exc:
        artifacts.register_path(store, "config", tmp_path / "c.json", name="gen")
    assert exc.value.field == "path" and rows(store) == 1


def test_registering_again_changes_nothing(store, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    first = artifacts.register_path(store, "model", f, name="chat", version="1", owner="a@x.io")
    with store.read() as conn:
        before = artifacts.get(conn, first.artifact.digest)
    again = artifacts.register_path(store, "model", f, name="renamed", version="2", owner="b@x.io",
                                    meta={"new": True})
    assert not again.created and not again.restored_payload
    assert again.artifact == before
    with store.read() as conn:
        assert artifacts.get(conn, before.digest) == before
    assert rows(store) == 1


def test_no_store_keeps_no_payload_until_registered_with_one(store, tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(b"too big to keep")
    a = artifacts.register_path(store, "model", f, name="big", store_payload=False).artifact
    assert a.payload == "none" and not store.blobs.has(a.digest)
    assert artifacts.payload_status(store, a) == "not-stored"
    assert artifacts.blob_digests(store, a) == []
    assert not artifacts.register_path(store, "model", f, name="big", store_payload=False).restored_payload
    reg = artifacts.register_path(store, "model", f, name="big")
    assert reg.restored_payload and reg.artifact.payload == "blob"
    assert artifacts.payload_status(store, reg.artifact) == "present"


def test_hosted_model_with_retirement(store):
    retires = parse_time("2027-01-01T00:00:00Z")
    reg = artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06", name="gpt-4o",
                                    retires_at=retires)
    a = reg.artifact
    assert reg.created and a.digest == sha(b"openai:gpt-4o-2024-08-06")
    assert (a.payload, a.hosted_id, a.retires_at, a.kind) == ("vendor", "openai:gpt-4o-2024-08-06", retires, "model")
    assert artifacts.payload_status(store, a) == "vendor" and artifacts.blob_digests(store, a) == []
    later = parse_time("2027-06-01T00:00:00Z")
    again = artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06", name="x", retires_at=later)
    assert not again.created and again.artifact.retires_at == later
    with store.read() as conn:
        assert artifacts.get(conn, a.digest).retires_at == later
        assert artifacts.get(conn, a.digest).name == "gpt-4o"
    for bad in ("gpt-4o", "openai:", ":gpt-4o"):
        with pytest.raises(ValidationError, match="is not VENDOR:MODEL_ID") as exc:
            artifacts.register_hosted(store, bad, name="x")
        assert exc.value.field == "hosted"
    assert rows(store) == 1


def test_parents_record_lineage_and_unknown_parents_are_refused(store, tmp_path):
    (tmp_path / "base.bin").write_bytes(b"base")
    (tmp_path / "lora.bin").write_bytes(b"lora")
    base = artifacts.register_path(store, "model", tmp_path / "base.bin", name="base").artifact
    unknown = sha(b"never registered")
    with pytest.raises(UnknownArtifactError, match=f"parent {unknown} is not a registered artifact"):
        artifacts.register_path(store, "adapter", tmp_path / "lora.bin", name="lora",
                                parents=[base.digest, unknown])
    with pytest.raises(ValidationError) as exc:
        artifacts.register_path(store, "adapter", tmp_path / "lora.bin", name="lora",
                                parents=["chat/v1"])
    assert exc.value.field == "parent"
    assert rows(store) == 1 and rows(store, artifact_parents) == 0
    lora = artifacts.register_path(store, "adapter", tmp_path / "lora.bin", name="lora",
                                   parents=[(base.digest, "base-model")]).artifact
    with store.read() as conn:
        assert artifacts.get(conn, lora.digest).parents == [(base.digest, "base-model")]
        assert artifacts.children(conn, base.digest) == [lora.digest]
        listed = {a.digest: a for a in artifacts.list_artifacts(conn)}
        assert listed[lora.digest].parents == [(base.digest, "base-model")]
        assert [a.digest for a in artifacts.list_artifacts(conn, "adapter")] == [lora.digest]
        assert artifacts.known_digests(conn, [base.digest, unknown, None]) == {base.digest}


def test_bad_input_is_refused(store, tmp_path):
    (tmp_path / "f.bin").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    cases = [
        (dict(kind="checkpoint", path=tmp_path / "f.bin", name="x"), "kind", "unknown artifact kind 'checkpoint'"),
        (dict(kind="model", path=tmp_path / "nope.bin", name="x"), "path", "does not exist"),
        (dict(kind="model", path=tmp_path / "empty", name="x"), "path", "holds no files"),
        (dict(kind="model", path=tmp_path / "f.bin", name="  "), "name", "needs a name"),
    ]
    for kwargs, field, message in cases:
        with pytest.raises(ValidationError, match=message) as exc:
            artifacts.register_path(store, kwargs.pop("kind"), kwargs.pop("path"), **kwargs)
        assert exc.value.field == field
    with pytest.raises(ValidationError, match="unknown artifact kind") as exc:
        artifacts.register_hosted(store, "openai:x", name="x", kind="llm")
    with pytest.raises(ValidationError, match="unknown artifact kind"):
        with store.read() as conn:
            artifacts.list_artifacts(conn, "llm")
    assert rows(store) == 0


def test_register_bytes(store):
    reg = artifacts.register_bytes(store, "prompt", b"Hi\r\n", name="rendered")
    assert reg.artifact.digest == sha(b"Hi\n") and store.blobs.get(reg.artifact.digest) == b"Hi\n"


def test_blob_store_verifies_on_read(store, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"original weights")
    a = artifacts.register_path(store, "model", f, name="w").artifact
    path = store.blobs.path_of(a.digest)
    assert path.parent.parent.parent == store.blobs.root
    path.write_bytes(b"original weightz")  # a flipped byte on disk
    with pytest.raises(BlobCorruptError, match=f"blob {a.digest} is corrupt"):
        store.blobs.get(a.digest)
    with pytest.raises(BlobCorruptError):
        store.blobs.copy_to(a.digest, tmp_path / "out.bin")
    assert store.blobs.verify(a.digest) == "corrupt"
    assert artifacts.payload_status(store, a) == "corrupt"
    # registering the content again repairs the stored copy
    reg = artifacts.register_path(store, "model", f, name="w")
    assert reg.restored_payload and store.blobs.get(a.digest) == b"original weights"
    # storing bytes over a corrupt blob repairs it too
    path.write_bytes(b"junk")
    assert store.blobs.put_bytes(b"original weights") == a.digest
    assert store.blobs.get(a.digest) == b"original weights"
    store.blobs.delete(a.digest)
    with pytest.raises(NotFoundError, match="is not in the store"):
        store.blobs.get(a.digest)
    assert store.blobs.verify(a.digest) == "missing" and not store.blobs.has(a.digest)


def test_payload_deleted_then_registered_again_is_restored(store, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"w")
    a = artifacts.register_path(store, "model", f, name="w").artifact
    for d in artifacts.blob_digests(store, a):
        store.blobs.delete(d)
    with store.write() as conn:
        artifacts.mark_payload_deleted(conn, a.digest, 123)
    with store.read() as conn:
        assert artifacts.get(conn, a.digest).payload_deleted_at == 123
    reg = artifacts.register_path(store, "model", f, name="w")
    assert reg.restored_payload and reg.artifact.payload_deleted_at is None
    assert store.blobs.get(a.digest) == b"w"


def test_put_file_refuses_a_file_that_changed(store, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"now")
    with pytest.raises(BlobCorruptError, match="changed while it was being stored"):
        store.blobs.put_file(f, expected=dg.of_bytes(b"before"))
    assert list(store.blobs.digests()) == []
    assert store.blobs.put_file(f) == dg.of_bytes(b"now")
    assert list(store.blobs.digests()) == [dg.of_bytes(b"now")]


def test_concurrent_registration_of_the_same_content(store, tmp_path):
    """Workers starting together register the same base model: one creates it, the others
    get it back; nobody fails."""
    import threading

    make_tree(tmp_path / "ckpt", FILES)
    results, errors = [], []
    barrier = threading.Barrier(6)

    def register(i):
        barrier.wait()
        try:
            if i % 2:
                results.append(artifacts.register_path(store, "model", tmp_path / "ckpt", name=f"w{i}"))
            else:
                results.append(artifacts.register_hosted(store, "acme:base-7b", name=f"h{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.created for r in results) == 2 and rows(store) == 2
    assert len({r.artifact.digest for r in results}) == 2
    assert artifacts.payload_status(store, next(r.artifact for r in results if r.artifact.is_directory)) == "present"
