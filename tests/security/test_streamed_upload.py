"""Uploads stream from the request into the blob store: no temporary file, bounded memory,
and nothing half-written. Against a real ``modelward serve`` over a blob directory and over
an S3 object store (moto's server): an upload cut off, past ``max_upload``, or refused after
its file arrived leaves no blob, no staged bytes and no artifact row; a whole one registers.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from modelward.ledger.blobs import blob_key, open_blob_store

from .server import MIB, Target, raw_request, zeros

pytestmark = pytest.mark.timeout(300)

BOUNDARY = "mwstream"


def form(before: dict, size: int, after: dict | None = None,
         filename: str = "weights.bin") -> tuple[dict, int, list]:
    """(headers, length, pieces) of a multipart form: ``before`` fields, a ``file`` of
    ``size`` zero bytes (generated, never held), then ``after`` fields."""
    def fields(items: dict) -> bytes:
        return b"".join(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\""
                        f"\r\n\r\n{v}\r\n".encode() for k, v in items.items())
    head = fields(before) + (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename="
        f"\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = b"\r\n" + fields(after or {}) + f"--{BOUNDARY}--\r\n".encode()
    return ({"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            len(head) + size + len(tail), [head, zeros(size), tail])


def pieces(parts):
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part


def zeros_digest(size: int) -> str:
    h, block = hashlib.sha256(), bytes(MIB)
    for _ in range(size // MIB):
        h.update(block)
    return "sha256:" + h.hexdigest()


class Backend:
    """Where the server under test keeps blobs, and how to see everything stored there."""

    def __init__(self, kind: str, home: Path, s3_server=None, url: str | None = None):
        self.kind, self.home, self.s3, self.url = kind, home, s3_server, url

    def blobs(self):
        return open_blob_store(self.url or self.home / "blobs",
                               cache_dir=self.home.parent / "cache")

    def key_of(self, digest: str) -> str:
        return blob_key(digest) if self.kind == "dir" else "blobs/" + blob_key(digest)

    def leftovers(self) -> list[str]:
        """Every stored blob, staged file or object, and unfinished multipart upload."""
        if self.kind == "dir":
            root = self.home / "blobs"
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        bucket = self.url[len("s3://"):].split("/")[0]
        client = self.s3.client()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)
                   .get("Uploads", [])]
        return sorted(keys) + [f"unfinished upload {k}" for k in uploads]


@pytest.fixture(params=["dir", "s3"])
def served(request, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"MODELWARD_MAX_UPLOAD": str(32 * MIB), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    if request.param == "s3":
        s3_server = request.getfixturevalue("s3_server")
        url = request.getfixturevalue("s3_url")  # also points this process at the server
        (home / "modelward.toml").write_text(f'[modelward]\nblob_url = "{url}"\n')
        env.update(s3_server.env)
        backend = Backend("s3", home, s3_server, url)
    else:
        backend = Backend("dir", home)
    target = Target(home, env).start()  # seeded with a promotion request (and its blobs)
    backend.before, backend.rows = backend.leftovers(), artifacts(target)
    yield target, backend
    target.stop()


def artifacts(target: Target) -> list:
    resp = target.request("GET", "/api/v1/artifacts", headers=target.bearer("reader"))
    assert resp.status == 200
    return resp.json()


def settled(backend: Backend, target: Target, timeout: float = 10) -> list[str]:
    """What the store holds beyond the seeded blobs once the server has dealt with the
    request (it may still be cleaning up a staged upload when the client has its answer, or
    no answer at all)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [k for k in backend.leftovers() if k not in backend.before]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def test_a_cut_off_upload_leaves_nothing(served):
    target, backend = served
    headers, length, parts = form({"kind": "model", "name": "cut"}, 24 * MIB)
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=20)
    head = ["POST /api/v1/artifacts HTTP/1.1", f"Host: 127.0.0.1:{target.port}",
            f"Content-Length: {length}",
            *(f"{k}: {v}" for k, v in {**headers, **target.bearer("writer")}.items())]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    for piece in pieces(parts):
        sock.sendall(piece)
        sent += len(piece)
        if sent > 12 * MIB:
            break  # half of the file went out: the client dies
    if backend.kind == "dir":  # the server is staging it (S3: still in the first part)
        deadline = time.monotonic() + 5
        while not [k for k in backend.leftovers() if k not in backend.before]:
            assert time.monotonic() < deadline, "the upload was never staged"
            time.sleep(0.05)
    else:
        time.sleep(0.5)
    sock.close()
    assert settled(backend, target) == []
    assert artifacts(target) == backend.rows
    assert target.request("GET", "/healthz").status == 200


def test_an_upload_past_max_upload_leaves_nothing(served):
    target, backend = served
    headers, _length, parts = form({"kind": "model", "name": "big"}, 64 * MIB)
    resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                       {**headers, **target.bearer("writer")}, pieces(parts), chunked=True)
    assert resp.status == 413 and "max_upload" in resp.json()["error"]["message"]
    assert settled(backend, target) == []
    assert artifacts(target) == backend.rows


@pytest.mark.parametrize("after, status, field", [
    ({"name": "n" * 300}, 422, "name"),  # refused when the row is written, after the blob
    ({"name": "p", "parent": "sha256:" + "0" * 64}, 404, None),  # an unknown parent
    ({"name": "h", "hosted": "openai:gpt-x"}, 422, "file"),
])
def test_an_upload_refused_after_its_file_arrived_leaves_nothing(served, after, status,
                                                                 field):
    target, backend = served
    headers, length, parts = form({"kind": "model"}, 20 * MIB, after)
    resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                       {**headers, **target.bearer("writer"), "Content-Length": str(length)},
                       pieces(parts))
    assert resp.status == status, resp.body
    if field:
        assert resp.json()["error"]["field"] == field
    assert settled(backend, target) == []
    assert artifacts(target) == backend.rows


def test_a_body_that_ends_inside_the_form_leaves_nothing(served):
    target, backend = served
    headers, _length, parts = form({"kind": "model", "name": "short"}, 4 * MIB)
    body = b"".join(pieces(parts[:2]))  # no closing boundary
    resp = target.request("POST", "/api/v1/artifacts", body,
                          {**headers, **target.bearer("writer")})
    assert resp.status == 422 and "closing boundary" in resp.json()["error"]["message"]
    assert settled(backend, target) == []
    assert artifacts(target) == backend.rows


def test_a_whole_upload_registers_with_fields_before_and_after_the_file(served):
    target, backend = served
    size = 20 * MIB
    headers, length, parts = form({"kind": "model"}, size, {"name": "whole", "version": "3"})
    resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                       {**headers, **target.bearer("writer"), "Content-Length": str(length)},
                       pieces(parts))
    assert resp.status == 200, resp.body
    got = resp.json()
    assert got["created"] and got["digest"] == zeros_digest(size)
    assert got["artifact"]["name"] == "whole" and got["artifact"]["size"] == size
    assert got["artifact"]["version"] == "3"
    assert backend.blobs().verify(got["digest"]) == "present"
    # the blob and nothing else: no staged bytes left behind
    assert settled(backend, target) == [backend.key_of(got["digest"])]
    assert [a["digest"] for a in artifacts(target) if a not in backend.rows] == [got["digest"]]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("where", ["dir", "s3"])
def test_a_300_mib_upload_streams_without_a_temporary_file(tmp_path, request, where):
    """The figure of the change: peak server RSS and system temp-dir bytes during a 300 MiB
    upload (before streaming, Starlette spooled the whole file to $TMPDIR and the route
    copied it to a second temporary file)."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {"MODELWARD_MAX_UPLOAD": str(512 * MIB), "TMPDIR": str(tmp)}
    if where == "s3":
        url = request.getfixturevalue("s3_url")
        (home / "modelward.toml").write_text(f'[modelward]\nblob_url = "{url}"\n')
        env.update(request.getfixturevalue("s3_server").env)
    target = Target(home, env).start()
    peak_tmp, seen, stop = [0], set(), threading.Event()

    def watch_tmp():
        while not stop.is_set():
            total = 0
            for root, _dirs, files in os.walk(tmp):
                for name in files:
                    seen.add(name)
                    try:
                        total += os.stat(os.path.join(root, name)).st_size
                    except FileNotFoundError:
                        pass
            peak_tmp[0] = max(peak_tmp[0], total)
            stop.wait(0.02)

    try:
        size = 300 * MIB
        headers, length, parts = form({"kind": "model", "name": "large"}, size)
        thread = threading.Thread(target=watch_tmp, daemon=True)
        thread.start()
        started = time.monotonic()
        with target.watch() as w:
            resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                               {**headers, **target.bearer("writer"),
                                "Content-Length": str(length)}, pieces(parts), timeout=300)
        took = time.monotonic() - started
        stop.set()
        thread.join(5)
        print(f"300 MiB upload ({where}): {took:.1f} s, peak server RSS {w.peak_rss / MIB:.0f} MiB, "
              f"peak $TMPDIR {peak_tmp[0] / MIB:.0f} MiB, files seen there: {len(seen)}")
        assert resp.status == 200, resp.body
        assert resp.json()["digest"] == zeros_digest(size)
        w.assert_healthy()
        assert seen == set() and peak_tmp[0] == 0
        if where == "dir":
            assert list((home / "blobs" / "tmp").iterdir()) == []
    finally:
        stop.set()
        target.stop()
