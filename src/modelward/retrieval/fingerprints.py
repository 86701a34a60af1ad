"""Embedder fingerprints: embed the sentinel probes, measure the noise floor, compare.

A run embeds every probe ``repeats`` times. Hosted APIs are not bit-stable, so the
**noise floor** is measured from the repeats: the largest of (a) 1 - cosine between a
probe's vector in a repeat and in the first repeat, over probes and repeats, and (b)
1 - Spearman correlation between the repeats' probe-pair similarity matrices; never below
``MIN_NOISE``.

A comparison of two runs on the same probes gives, on the mean (normalised) vector of
each probe:

* the per-probe cosine (only when the dimensions agree: vectors of different models live
  in different spaces), its median and the worst probes;
* the Spearman correlation of the two probe-pair cosine-similarity matrices (upper
  triangles), which works even when the dimensions differ;
* the magnitude, max(1 - median per-probe cosine, 1 - matrix correlation), and the
  verdict ``changed`` when it exceeds ``margin`` × the larger noise floor of the two runs
  (or the dimensions differ), ``same`` otherwise.

A rotated basis keeps the matrix correlation at 1 but drops the per-probe cosine: an
index built with the old vectors no longer matches, so it is a change.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

MIN_NOISE = 1e-4  # float32 storage and well-behaved servers stay far below this
MARGIN = 3.0  # a change must exceed the noise floor this many times over
WORST = 5  # probes listed as moving the most


def near_one(x: float) -> str:
    """A cosine or correlation close to 1 with enough decimals to show how far from 1 it
    is (two significant digits of 1 - x): 0.590, 0.9812, 0.999982, 1 - 2.0e-12, never a bare 1.000
    for a value that is not 1."""
    gap = 1.0 - x
    if gap <= 0:
        return f"{x:.3f}"
    if gap < 1e-9:
        return f"1 - {gap:.1e}"
    decimals = max(3, min(10, -math.floor(math.log10(gap)) + 1))
    return f"{x:.{decimals}f}"


def to_npy(vectors: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, vectors.astype(np.float32), allow_pickle=False)
    return buf.getvalue()


def from_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


def mean_vectors(runs: np.ndarray) -> np.ndarray:
    """(repeats, probes, dims) -> (probes, dims): the unit mean of each probe's unit vectors."""
    return _unit(_unit(runs).mean(axis=0))


def _upper(vectors: np.ndarray) -> np.ndarray:
    sim = vectors @ vectors.T
    return sim[np.triu_indices(len(vectors), k=1)]


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's rho needs)."""
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denom == 0:  # a constant matrix: identical only to itself
        return 1.0 if np.array_equal(a, b) else 0.0
    return float((ra * rb).sum() / denom)


def noise_floor(runs: np.ndarray) -> float:
    """The noise floor of one run's repeats (see the module docstring)."""
    unit = _unit(runs)
    worst = 0.0
    first_upper = _upper(unit[0])
    for r in range(1, len(unit)):
        cos = (unit[r] * unit[0]).sum(axis=1)
        worst = max(worst, float((1 - cos).max()), 1 - spearman(_upper(unit[r]), first_upper))
    return max(MIN_NOISE, worst)


@dataclass
class Comparison:
    verdict: str  # "same" | "changed"
    magnitude: float
    threshold: float
    matrix_correlation: float
    median_cosine: float | None
    min_cosine: float | None
    worst: list[tuple[str, float]]  # (probe id, cosine), lowest first
    dims: tuple[int, int]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "magnitude": self.magnitude,
                "threshold": self.threshold, "matrix_correlation": self.matrix_correlation,
                "median_cosine": self.median_cosine, "min_cosine": self.min_cosine,
                "worst_probes": [{"probe": p, "cosine": c} for p, c in self.worst],
                "dims": list(self.dims)}


def compare(base: np.ndarray, new: np.ndarray, *, noise: float, probe_ids: list[str],
            margin: float = MARGIN) -> Comparison:
    """Compare two runs' (repeats, probes, dims) vectors on the same probes; ``noise`` is
    the larger of the two runs' noise floors."""
    b, n = mean_vectors(base), mean_vectors(new)
    rho = spearman(_upper(b), _upper(n))
    magnitude = 1 - rho
    median = low = None
    worst: list[tuple[str, float]] = []
    if b.shape[1] == n.shape[1]:
        cos = (b * n).sum(axis=1)
        median, low = float(np.median(cos)), float(cos.min())
        magnitude = max(magnitude, 1 - median)
        order = np.argsort(cos, kind="stable")[:WORST]
        worst = [(probe_ids[i], round(float(cos[i]), 6)) for i in order]
    threshold = margin * max(noise, MIN_NOISE)
    changed = b.shape[1] != n.shape[1] or magnitude > threshold
    return Comparison("changed" if changed else "same", max(0.0, float(magnitude)), threshold,
                      rho, median, low, worst, (b.shape[1], n.shape[1]))
