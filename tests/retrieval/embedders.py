"""Real, deterministic local embedders for the fingerprint tests (no mocks): a hashing
embedder, the same one in a rotated basis, one with a little per-call noise like a hosted
API, one of another width, and an OpenAI-compatible /embeddings server in a thread."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import orjson

DIMS = 48


def _hash_vector(text: str, dims: int) -> np.ndarray:
    v = np.zeros(dims)
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        h = hashlib.blake2b(padded[i:i + 3].encode(), digest_size=8).digest()
        v[int.from_bytes(h[:4], "little") % dims] += 1.0 if h[4] & 1 else -1.0
    return v


def _embed(texts, dims=DIMS) -> np.ndarray:
    return np.array([_hash_vector(t, dims) for t in texts])


ROTATION = np.linalg.qr(np.random.default_rng(7).normal(size=(DIMS, DIMS)))[0]


def hashing(texts, *, model):
    return _embed(texts).tolist()


def rotated(texts, *, model):
    """The same geometry in another basis: every per-probe cosine drops, the probe-pair
    similarity matrix stays the same."""
    return (_embed(texts) @ ROTATION).tolist()


_rng = np.random.default_rng(11)


NUDGE = np.random.default_rng(5).normal(size=(DIMS, DIMS))


def nudged(texts, *, model):
    """A small update: every vector moved a little (per-probe cosine about 0.99), far less
    than a rotation but far beyond ``noisy``'s noise."""
    base = _embed(texts)
    return (base + 0.15 * base @ NUDGE / np.sqrt(DIMS)).tolist()


def noisy(texts, *, model):
    """A hosted API's non-bit-stable answers: the same vectors plus a little noise."""
    base = _embed(texts)
    return (base + _rng.normal(scale=2e-3, size=base.shape)).tolist()


def wide(texts, *, model):
    return _embed(texts, dims=96).tolist()


def broken(texts, *, model):
    return [[1.0, 2.0]] * (len(texts) - 1)


class EmbeddingServer:
    """An OpenAI-compatible ``POST /v1/embeddings`` on 127.0.0.1, answering with
    ``hashing`` (or ``rotated`` once ``rotate`` is set) and reporting ``served_model``."""

    def __init__(self) -> None:
        self.rotate = False
        self.served_model = "text-embedding-local-001"
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, **body})
                if self.path != "/v1/embeddings":
                    self.send_response(404)
                    self.end_headers()
                    return
                fn = rotated if outer.rotate else hashing
                vectors = fn(body["input"], model=body["model"])
                data = [{"object": "embedding", "index": i, "embedding": v}
                        for i, v in reversed(list(enumerate(vectors)))]  # any order
                raw = orjson.dumps({"object": "list", "data": data,
                                    "model": outer.served_model})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
