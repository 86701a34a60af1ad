"""Balanced salt search: try K candidate salts on a pre-period population and keep the one
whose assignment minimises the largest absolute standardized mean difference (SMD) across
covariates, for every treatment arm against control.

Candidates are deterministic — ``NAME:0`` … ``NAME:K-1`` — so anyone can re-run the search
and land on the same salt. Subjects are packed once; each candidate costs one vectorised
SipHash pass, a comparison against the arm bounds, and one matrix-vector product per
treatment arm that sums every covariate, its square and its count at once. Candidates run
on every core (numpy releases the GIL inside its loops).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import ValidationError
from . import siphash
from .assignment import Experiment, pack
from .balance import smd

CRITERION = "max_abs_smd"


def candidate_salts(name: str, k: int) -> list[str]:
    return [f"{name}:{i}" for i in range(k)]


@dataclass
class SearchResult:
    salt: str
    index: int
    candidates: int
    criterion: str
    achieved: float  # the chosen salt's largest |SMD|
    first: float  # candidate 0's, i.e. what an arbitrary salt would have given
    median: float
    worst: float
    smd: dict[str, dict[str, float]]  # treatment arm -> covariate -> SMD (chosen salt)
    subjects: int
    covariates: list[str]
    seconds: float

    def to_dict(self) -> dict:
        return {"criterion": self.criterion, "candidates": self.candidates,
                "candidate_salts": f"{self.salt.rsplit(':', 1)[0]}:0..{self.candidates - 1}",
                "salt": self.salt, "salt_index": self.index,
                "achieved": round(self.achieved, 6),
                "candidate_0": round(self.first, 6), "median": round(self.median, 6),
                "worst": round(self.worst, 6),
                "smd": {a: {c: round(v, 6) for c, v in d.items()} for a, d in self.smd.items()},
                "subjects": self.subjects, "covariates": self.covariates,
                "seconds": round(self.seconds, 3)}


class _Design:
    """Everything a candidate needs that does not depend on the salt."""

    def __init__(self, subjects, columns: dict[str, np.ndarray]) -> None:
        self.packed = pack(subjects)
        self.covariates = list(columns)
        n, c = self.packed.size, len(columns)
        self.matrix = np.zeros((n, 3 * c), dtype=np.float64)
        for i, values in enumerate(columns.values()):
            ok = ~np.isnan(values)
            # centred on the population mean: sums of squares keep their precision even
            # for timestamps in microseconds
            x = np.where(ok, values - (values[ok].mean() if ok.any() else 0.0), 0.0)
            self.matrix[:, i] = x
            self.matrix[:, c + i] = x * x
            self.matrix[:, 2 * c + i] = ok
        self.totals = self.matrix.sum(axis=0)

    def moments(self, sums: np.ndarray):
        c = len(self.covariates)
        s1, s2, n = sums[:c], sums[c:2 * c], sums[2 * c:]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s1 / n
            var = (s2 - s1 * mean) / (n - 1)
        return mean, np.maximum(var, 0.0), n


def _evaluate(design: _Design, exp: Experiment) -> tuple[float, dict[str, np.ndarray]]:
    h = siphash.siphash24_many(exp._state, design.packed)
    # arm = how many bounds u = (h >> 11) / 2**53 reaches: u >= b  <=>  h >= ceil(b * 2**53) << 11
    thresholds = [np.uint64(math.ceil(b * 2.0 ** 53) << 11) for b in exp.bounds[:-1]]
    arm = np.zeros(len(h), dtype=np.int8)
    for t in thresholds:
        arm += h >= t
    control = exp.arm_names.index(exp.control)
    sums = {}
    rest = design.totals.copy()
    for j, name in enumerate(exp.arm_names):
        if j == control:
            continue
        sums[name] = (arm == j).astype(np.float64) @ design.matrix
        rest -= sums[name]
    mc, vc, nc = design.moments(rest)
    out, worst = {}, 0.0
    for name, s in sums.items():
        ma, va, na = design.moments(s)
        d = smd(ma, va, mc, vc)
        d = np.where((na < 2) | (nc < 2), np.nan, d)
        out[name] = d
        if np.isnan(d).any():
            worst = math.inf
        else:
            worst = max(worst, float(np.abs(d).max(initial=0.0)))
    return worst, out


def search(name: str, arms, subjects, columns: dict[str, np.ndarray], *, candidates: int = 100,
           workers: int | None = None,
           progress: Callable[[int, int], None] | None = None) -> SearchResult:
    """Try ``candidates`` salts; the one with the smallest largest |SMD| wins (ties: the
    lowest candidate)."""
    if candidates < 1:
        raise ValidationError(f"must be at least 1, got {candidates}", field="candidates")
    if not columns:
        raise ValidationError("name at least one numeric covariate to balance on",
                              field="covariates")
    t0 = time.perf_counter()
    design = _Design(subjects, columns)
    salts = candidate_salts(name, candidates)
    exps = [Experiment(name, s, arms) for s in salts]
    scores: list[float] = [math.inf] * candidates
    best: dict[int, dict[str, np.ndarray]] = {}
    done = 0

    def run(i: int):
        return i, *_evaluate(design, exps[i])

    workers = workers or min(os.cpu_count() or 1, 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, score, per_arm in pool.map(run, range(candidates)):
            scores[i] = score
            if not best or score < scores[min(best)]:
                best = {i: per_arm}
            done += 1
            if progress is not None:
                progress(done, candidates)
    index = min(best)
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        raise ValidationError("every candidate leaves an arm with fewer than two subjects "
                              "with a value", field="balance-on",
                              hint="a larger population or fewer, larger arms")
    return SearchResult(
        salt=salts[index], index=index, candidates=candidates, criterion=CRITERION,
        achieved=scores[index], first=scores[0], median=float(np.median(finite)),
        worst=max(finite),
        smd={a: {c: float(v) for c, v in zip(design.covariates, d, strict=True)}
             for a, d in best[index].items()},
        subjects=design.packed.size, covariates=design.covariates,
        seconds=time.perf_counter() - t0)
