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
* the magnitude, max(1 - median per-probe cosine, 1 - matrix correlation).

:func:`judge` gives the verdict ``modelward fingerprint run`` records (and ``fingerprint
compare`` recomputes, and MW501 reports): the new run against the earlier runs of the same
substrate epoch (its **baseline runs**), so the null covers the variation between runs
taken at different times, not only between back-to-back repeats. The magnitudes between
every pair of baseline runs (on their mean vectors, so each carries its run's between-run
perturbation and its repeats' noise) are split into each run's own **departure** v_i
(least squares on D_ij = v_i + v_j); the new run's departure is the mean over baseline
runs j of D(new, j) - v_j. The threshold is the one-sided upper prediction bound for one
more departure, log-normal: exp(mean + t(k-1, 1-BOUND_ALPHA) * sd * sqrt(1 + 1/k)) of the
k log departures, computed at ``BOUND_ALPHA`` = 0.2% so that the verdict's measured
false-alarm rate stays within ``ALPHA`` = 1% (the bound at 1% measured 1.3-2.5%),
never above ``GROSS`` (a change beyond it is a change whatever the spread), never below ``MARGIN`` × ``MIN_NOISE``.
The verdict is ``changed`` when the new run's departure (the comparison's magnitude) is
above it (or the dimensions differ), ``same`` otherwise. With fewer than ``MIN_RUNS``
baseline runs the spread cannot be estimated: the verdict is ``changed`` only beyond the
gross bound ``GROSS`` (a median per-probe cosine or matrix correlation below 0.9) and
``inconclusive`` otherwise. The threshold is the smallest change the run can detect.

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
ALPHA = 0.01  # the false-alarm rate the verdict is calibrated to (bench/calib/mw501.py)
BOUND_ALPHA = 0.002  # the prediction bound's level: the log-normal bound at ALPHA runs ~2x over
MIN_RUNS = 3  # baseline runs needed to estimate the spread between runs
MAX_RUNS = 20  # the most recent baseline runs of an epoch used
GROSS = 0.1  # with too few baseline runs: changed only beyond this magnitude


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
    baseline_runs: int = 1  # runs the new one was judged against
    method: str = "repeats"  # "between-runs" | "too-few-runs" | "repeats" (compare())
    alpha: float | None = None  # the false-alarm rate the threshold is set at

    @property
    def detectable_cosine(self) -> float:
        """The smallest detectable change, as a median per-probe cosine (or a matrix
        correlation): anything at or below 1 - threshold reads ``changed``."""
        return 1.0 - self.threshold

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "magnitude": self.magnitude,
                "threshold": self.threshold, "matrix_correlation": self.matrix_correlation,
                "median_cosine": self.median_cosine, "min_cosine": self.min_cosine,
                "worst_probes": [{"probe": p, "cosine": c} for p, c in self.worst],
                "dims": list(self.dims), "baseline_runs": self.baseline_runs,
                "method": self.method, "alpha": self.alpha,
                "detectable_cosine": self.detectable_cosine}


def compare(base: np.ndarray, new: np.ndarray, *, noise: float, probe_ids: list[str],
            margin: float = MARGIN) -> Comparison:
    """Compare two runs' (repeats, probes, dims) vectors on the same probes; ``noise`` is
    the larger of the two runs' noise floors."""
    b, n = mean_vectors(base), mean_vectors(new)
    magnitude, rho, median, low, worst = _figures(b, n, probe_ids)
    threshold = margin * max(noise, MIN_NOISE)
    changed = b.shape[1] != n.shape[1] or magnitude > threshold
    return Comparison("changed" if changed else "same", magnitude, threshold,
                      rho, median, low, worst, (b.shape[1], n.shape[1]))


def _figures(b: np.ndarray, n: np.ndarray, probe_ids: list[str]):
    """(magnitude, matrix correlation, median cosine, min cosine, worst) of mean vectors."""
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
    return max(0.0, float(magnitude)), rho, median, low, worst


def _centroid(means: list[np.ndarray]) -> np.ndarray:
    return _unit(np.mean(means, axis=0))


def _run_noise(means: list[np.ndarray]) -> np.ndarray:
    """Each baseline run's own departure v_i, from the pairwise magnitudes D_ij ~ v_i + v_j
    (least squares over the k(k-1)/2 pairs)."""
    k, ids = len(means), [""] * len(means[0])
    rows, d = [], []
    for i in range(k):
        for j in range(i + 1, k):
            row = np.zeros(k)
            row[[i, j]] = 1.0
            rows.append(row)
            d.append(_figures(means[i], means[j], ids)[0])
    v = np.linalg.lstsq(np.asarray(rows), np.asarray(d), rcond=None)[0]
    # a departure estimated near or below zero would dominate the log-scale spread
    return np.maximum(v, max(MIN_NOISE, FLOOR * float(np.median(d))))


FLOOR = 0.05  # a baseline run's departure counts as at least this share of the median pair


def null_threshold(v: np.ndarray, alpha: float = BOUND_ALPHA) -> float:
    """The one-sided upper prediction bound at ``alpha`` for one more run's departure,
    from the k baseline runs' departures ``v`` (log-normal)."""
    from scipy.stats import t as student_t

    k = len(v)
    logs = np.log(v)
    bound = float(np.exp(logs.mean() + student_t.ppf(1 - alpha, k - 1)
                         * logs.std(ddof=1) * np.sqrt(1 + 1 / k)))
    return min(max(bound, MARGIN * MIN_NOISE), GROSS)


def judge(baseline: list[np.ndarray], new: np.ndarray, *, probe_ids: list[str],
          alpha: float = BOUND_ALPHA) -> Comparison:
    """The verdict on ``new`` (repeats, probes, dims) against the earlier runs of its
    epoch, ``baseline`` (each (repeats, probes, dims), oldest first; the most recent
    ``MAX_RUNS`` are used): see the module docstring."""
    if not baseline:
        raise ValueError("judge needs at least one baseline run")
    means = [mean_vectors(r) for r in baseline[-MAX_RUNS:]]
    n = mean_vectors(new)
    k = len(means)
    dims = (means[-1].shape[1], n.shape[1])
    if dims[0] != dims[1]:
        magnitude, rho, median, low, worst = _figures(means[-1], n, probe_ids)
        return Comparison("changed", magnitude, 0.0, rho, median, low, worst, dims, k,
                          "dimensions", None)
    magnitude, rho, median, low, worst = _figures(_centroid(means), n, probe_ids)
    if k < MIN_RUNS:
        verdict = "changed" if magnitude > GROSS else "inconclusive"
        return Comparison(verdict, magnitude, GROSS, rho, median, low, worst, dims, k,
                          "too-few-runs", None)
    v = _run_noise(means)
    ids = [""] * len(n)
    departure = max(0.0, float(np.mean([_figures(m, n, ids)[0] - v[j]
                                        for j, m in enumerate(means)])))
    threshold = null_threshold(v, alpha)
    return Comparison("changed" if departure > threshold else "same", departure, threshold,
                      rho, median, low, worst, dims, k, "between-runs", ALPHA)


def basis(cmp: Comparison | dict) -> str:
    """What the threshold rests on and the smallest change it can detect, for messages."""
    c = cmp.to_dict() if isinstance(cmp, Comparison) else cmp
    k, method = c.get("baseline_runs", 1), c.get("method", "repeats")
    runs = f"{k} baseline run{'' if k == 1 else 's'}"
    if method == "dimensions":
        return f"the dimensions differ ({runs})"
    if method == "too-few-runs":
        return (f"{runs}, fewer than the {MIN_RUNS} needed to measure the noise between runs: "
                f"inconclusive below the gross bound (median per-probe cosine "
                f"{near_one(1 - GROSS)})")
    if method == "between-runs" and c["threshold"] >= GROSS:
        return (f"the noise between {runs} is too spread to detect less than the gross "
                f"bound (median per-probe cosine {near_one(1 - GROSS)}) at a "
                f"{c['alpha']:.0%} false-alarm rate")
    if method == "between-runs":
        return (f"threshold at a {c['alpha']:.0%} false-alarm rate from the noise between "
                f"{runs}; smallest detectable change: median per-probe cosine "
                f"{near_one(1 - c['threshold'])}")
    return f"threshold {MARGIN:g}x the repeats' noise floor"
