"""MW501 fingerprint verdicts: an embedder whose noise varies between runs (null) and a
real update behind a noisy API (power).

Each case embeds 40 sentinel probes (64 dimensions) in ``RUNS`` baseline runs of the same
epoch and one new run, 3 back-to-back repeats each, and judges the new run with
:func:`modelward.retrieval.fingerprints.judge`, the verdict ``modelward fingerprint run``
records, ``fingerprint compare`` recomputes and MW501 reports. A run's vectors are the
model's vectors plus a perturbation shared by the run's repeats (a server's state at that
time: its size drawn per run, log-normal around ``between``) plus per-call noise
(``within``).

Before (3x the larger noise floor of two runs' back-to-back repeats) the first null fired
in 98% of cases and the update to cosine 0.98 behind a noisy API read ``same`` in 100%;
now the nulls fire in 0.1-0.6% and that update is caught in 100% (docs/fingerprints.md).
"""

from __future__ import annotations

import random

import numpy as np

from modelward.retrieval import fingerprints as fp

from . import Scenario

PROBES, DIMS, REPEATS, RUNS = 40, 64, 3, 5


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _run(gen, truth: np.ndarray, between: float, within: float) -> np.ndarray:
    scale = between * float(np.exp(gen.normal(0, 0.5)))
    shared = truth + scale * gen.normal(size=truth.shape) / np.sqrt(DIMS)
    calls = shared + within * gen.normal(size=(REPEATS, *truth.shape)) / np.sqrt(DIMS)
    return calls.astype(np.float32).astype(np.float64)


def _updated(gen, truth: np.ndarray, cosine: float) -> np.ndarray:
    """Every probe's vector moved to ``cosine`` with its old one."""
    other = gen.normal(size=truth.shape)
    other -= (other * truth).sum(axis=1, keepdims=True) * truth
    return _unit(cosine * truth + np.sqrt(1 - cosine ** 2) * _unit(other))


def case(between: float, within: float, update: float | None = None, runs: int = RUNS):
    def fires(rng: random.Random) -> bool:
        gen = np.random.default_rng(rng.getrandbits(64))
        truth = _unit(gen.normal(size=(PROBES, DIMS)))
        baseline = [_run(gen, truth, between, within) for _ in range(runs)]
        after = _updated(gen, truth, update) if update else truth
        new = _run(gen, after, between, within)
        ids = [f"p{i}" for i in range(PROBES)]
        return fp.judge(baseline, new, probe_ids=ids).verdict == "changed"
    return fires


NOMINAL = fp.ALPHA
SCENARIOS = [
    Scenario("MW501", "noise varying between runs, quiet repeats", NOMINAL,
             case(between=0.02, within=0.002), reps=3000, tags=("clustered",)),
    Scenario("MW501", "noise varying between runs, quiet repeats, 3 baseline runs", NOMINAL,
             case(between=0.02, within=0.002, runs=3), reps=3000, tags=("clustered",)),
    Scenario("MW501", "noise varying between runs, noisy repeats", NOMINAL,
             case(between=0.05, within=0.05), reps=3000, tags=("clustered",)),
    Scenario("MW501", "steady noisy API, no change", NOMINAL,
             case(between=0.0, within=0.12), reps=3000),
    Scenario("MW501", "update to cosine 0.98 behind a noisy API", NOMINAL,
             case(between=0.0, within=0.12, update=0.98), effect="per-probe cosine 0.98",
             reps=500),
    Scenario("MW501", "update to cosine 0.98, noise varying between runs", NOMINAL,
             case(between=0.02, within=0.002, update=0.98), effect="per-probe cosine 0.98",
             reps=500),
]
