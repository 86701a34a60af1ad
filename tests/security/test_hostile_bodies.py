"""Bodies sent to hurt the server: huge bodies without a token, bodies past a route's limit
(declared or chunked), a gzip bomb, an oversize upload before and after authentication.
Every attack gets its refusal before the body is read (or as soon as it passes the limit),
while /healthz keeps answering within 1 s and the server's peak RSS stays under
``server.RSS_BOUND``."""

from __future__ import annotations

import struct
import zlib

import pytest

from .server import MIB, multipart, raw_request, zeros

pytestmark = pytest.mark.timeout(120)


def _bomb(total: int = 1 << 30, block: int = 4 * MIB):
    """``total`` zero bytes as one valid gzip stream (1 GiB -> about 1 MiB), made piece by
    piece: after a full flush deflate forgets its history, so every further block of zeros
    compresses to the same bytes, and only the trailer's CRC needs the whole input."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zero = bytes(block)
    first = pack.compress(zero) + pack.flush(zlib.Z_FULL_FLUSH)
    again = pack.compress(zero) + pack.flush(zlib.Z_FULL_FLUSH)
    end = pack.flush()[:-8]  # the final empty block, without the trailer of 2 blocks
    crc = 0
    for _ in range(total // block):
        crc = zlib.crc32(zero, crc)
    yield first
    for _ in range(total // block - 1):
        yield again
    yield end + struct.pack("<II", crc, total & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def bomb():
    return b"".join(_bomb())


def test_a_300_mb_json_body_without_a_token_is_refused_unread(target):
    with target.watch() as w:
        resp = raw_request(target.port, "PUT", "/api/v1/aliases/chat/v1",
                           {"Content-Type": "application/json",
                            "Content-Length": str(300 * MIB)}, zeros(300 * MIB))
    assert resp.status == 401 and resp.json()["error"]["code"] == "unauthorized"
    assert resp.sent < 300 * MIB // 2  # answered long before the body was through
    w.assert_healthy()
    print(f"300 MB without a token: 401 after {resp.sent / MIB:.0f} MiB sent, "
          f"peak RSS {w.peak_rss / MIB:.0f} MiB")


def test_a_chunked_body_without_a_token_is_refused_unread(target):
    with target.watch() as w:
        resp = raw_request(target.port, "POST", "/api/v1/decisions",
                           {"Content-Type": "application/json"}, zeros(300 * MIB),
                           chunked=True)
    assert resp.status == 401
    w.assert_healthy()


def test_a_declared_length_past_the_route_limit_is_refused_at_once(target):
    with target.watch() as w:
        resp = raw_request(target.port, "PUT", "/api/v1/aliases/chat/v1",
                           {**target.bearer("writer"), "Content-Type": "application/json",
                            "Content-Length": str(300 * MIB)}, zeros(300 * MIB))
    err = resp.json()["error"]
    assert resp.status == 413 and err["code"] == "payload_too_large"
    assert "max_body" in err["message"]
    assert resp.sent < 300 * MIB // 2
    w.assert_healthy()


def test_a_chunked_body_is_cut_off_when_it_passes_the_limit(target):
    with target.watch() as w:
        resp = raw_request(target.port, "POST", "/api/v1/decisions",
                           {**target.bearer("writer"), "Content-Type": "application/json"},
                           zeros(300 * MIB, 256 * 1024), chunked=True)
    assert resp.status == 413 and "max_batch_body" in resp.json()["error"]["message"]
    assert resp.sent < 300 * MIB // 2
    w.assert_healthy()
    print(f"chunked 300 MB with a token: 413 after {resp.sent / MIB:.0f} MiB sent, "
          f"peak RSS {w.peak_rss / MIB:.0f} MiB")


def test_a_reader_token_cannot_send_a_body_to_a_writer_route(target):
    resp = raw_request(target.port, "POST", "/api/v1/decisions",
                       {**target.bearer("reader"), "Content-Length": str(300 * MIB)},
                       zeros(300 * MIB))
    assert resp.status == 403 and resp.json()["error"]["code"] == "forbidden"


def test_a_gzip_bomb_is_refused_after_a_few_mib_of_output(target, bomb):
    assert len(bomb) < 2 * MIB  # 1 GiB of zeros
    check = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(check.decompress(bomb[:64 * 1024], 8 * MIB)) == 8 * MIB  # it is what it says
    with target.watch() as w:
        resp = raw_request(target.port, "POST", "/v1/traces",
                           {**target.bearer("writer"), "Content-Type": "application/json",
                            "Content-Encoding": "gzip", "Content-Length": str(len(bomb))},
                           (bomb[i:i + 64 * 1024] for i in range(0, len(bomb), 64 * 1024)))
    err = resp.json()["error"]
    assert resp.status == 413 and err["code"] == "payload_too_large"
    assert "max_decompression_ratio" in err["message"]
    w.assert_healthy()
    print(f"gzip bomb (1 GiB in {len(bomb) / MIB:.2f} MiB): 413, peak RSS "
          f"{w.peak_rss / MIB:.0f} MiB")
    # the server still ingests an honest gzip export
    body = zlib.compress(b'{"resourceSpans": []}', wbits=16 + zlib.MAX_WBITS)
    ok = target.request("POST", "/v1/traces", body,
                        {**target.bearer("writer"), "Content-Type": "application/json",
                         "Content-Encoding": "gzip"})
    assert ok.status == 200, ok.body


def test_an_upload_without_a_token_is_refused_before_it_is_read(target):
    headers, length, body = multipart({"kind": "model", "name": "big"}, 2048 * MIB)
    with target.watch() as w:
        resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                           {**headers, "Content-Length": str(length)}, body)
    assert resp.status == 401
    assert resp.sent < 100 * MIB
    w.assert_healthy()


def test_an_upload_past_max_upload_is_cut_off(target):
    headers, _length, body = multipart({"kind": "model", "name": "big"}, 64 * MIB)
    with target.watch() as w:
        resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                           {**headers, **target.bearer("writer")}, body, chunked=True)
    assert resp.status == 413 and "max_upload" in resp.json()["error"]["message"]
    w.assert_healthy()
    # within the limit it registers
    headers, length, body = multipart({"kind": "model", "name": "small"}, 2 * MIB)
    resp = raw_request(target.port, "POST", "/api/v1/artifacts",
                       {**headers, **target.bearer("writer"), "Content-Length": str(length)},
                       body)
    assert resp.status == 200 and resp.json()["created"] is True


def test_the_log_in_form_takes_no_large_body(target):
    resp = raw_request(target.port, "POST", "/login",
                       {"Origin": target.origin,
                        "Content-Type": "application/x-www-form-urlencoded"},
                       zeros(300 * MIB, 256 * 1024), chunked=True)
    assert resp.status == 413
