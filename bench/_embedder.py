"""The embedder ``bench/detect.py`` fingerprints on a schedule: a deterministic local
hashing embedder (a ``module:func`` runner), which answers in a rotated basis once
``ROTATED`` is set — the vendor's silent change MW501 must catch at the next probe."""

from __future__ import annotations

import hashlib

import numpy as np

DIMS = 48
ROTATION = np.linalg.qr(np.random.default_rng(7).normal(size=(DIMS, DIMS)))[0]
ROTATED = False


def _vector(text: str) -> np.ndarray:
    v = np.zeros(DIMS)
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        h = hashlib.blake2b(padded[i:i + 3].encode(), digest_size=8).digest()
        v[int.from_bytes(h[:4], "little") % DIMS] += 1.0 if h[4] & 1 else -1.0
    return v


def embed(texts, *, model):
    vectors = np.array([_vector(t) for t in texts])
    return (vectors @ ROTATION if ROTATED else vectors).tolist()
