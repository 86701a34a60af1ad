"""MW404 (substrate shift): the claim "the treatment's effect differs by regime", made by
the guard's own regime split and interaction test (``regimes.split`` and
``regimes.differing``, which ``modelward check`` calls) on simulated exposures.

Null: a substrate change moves the metric of both arms alike (no interaction); subjects
are exposed repeatedly and their exposures are correlated (intra-class correlation), the
way one user's sessions are. Effect: the treatment's lift is present in one regime only."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from modelward.rollout import regimes

from . import Scenario


@dataclass
class Row:  # the fields of an exposure the regime split reads (ledger.experiments.ExposureRow)
    subject: str
    arm: str
    at: int
    model_digest: str | None
    embedder_digest: str | None
    vendor_model_id: str | None
    fingerprint_epoch: int | None
    metric: float | None


def _fires(alpha: float, *, subjects: int = 200, per_subject=10, icc: float = 0.5,
           n_regimes: int = 2, nested: bool = True, binary: bool = False,
           interaction: float = 0.0):
    """``subjects`` per regime (nested) or in all (crossed), 50/50 arms; ``per_subject``
    exposures each (an int, or "varied": 1 + geometric, mean 10)."""
    def fires(rng: random.Random) -> bool:
        g = np.random.default_rng(rng.getrandbits(64))
        total = subjects * (n_regimes if nested else 1)
        arm = np.where(g.random(total) < 0.5, "treatment", "control")
        level = g.normal(0.0, np.sqrt(icc), total)  # the subject's own level
        shift = g.normal(0.0, 1.0, n_regimes)  # the substrate moves both arms alike
        rows = []
        for s in range(total):
            k = int(per_subject) if per_subject != "varied" else 1 + int(g.geometric(0.1))
            reg = (np.full(k, s // subjects) if nested else g.integers(0, n_regimes, k))
            for r in reg:
                mu = level[s] + shift[r]
                if arm[s] == "treatment" and r == n_regimes - 1:
                    mu += interaction
                if binary:  # a click: the subject's propensity through a logistic link
                    value = float(g.random() < 1 / (1 + np.exp(-(mu - 1.0) * 1.5)))
                else:
                    value = float(mu + g.normal(0.0, np.sqrt(1 - icc)))
                rows.append((int(r) * 10**9 + s * 1000 + len(rows), s, r, value))
        rows.sort()
        out = [Row(f"u-{s}", str(arm[s]), at, f"sha256:model-{r}", None, None, None, value)
               for at, s, r, value in rows]
        report = regimes.split("calib", out, {}, ["control", "treatment"], "control")
        return bool(regimes.differing(report, alpha))
    return fires


def _fast(alpha: float, *, subjects: int = 200, per_subject=10, icc: float = 0.5,
          n_regimes: int = 2, nested: bool = True, binary: bool = False,
          interaction: float = 0.0):
    """The same cases as :func:`_fires`, drawn at the subject level: a subject's mean over
    its k exposures in a regime is drawn directly (normal with variance (1 - ICC) / k, or
    binomial / k for clicks), the same distribution as averaging k drawn exposures. The
    decision is the guard's own: ``regimes.interaction`` over the regimes' per-arm subject
    means, then ``p < alpha`` as ``regimes.differing`` does."""
    def fires(rng: random.Random) -> bool:
        g = np.random.default_rng(rng.getrandbits(64))
        total = subjects * (n_regimes if nested else 1)
        treat = g.random(total) < 0.5
        level = g.normal(0.0, np.sqrt(icc), total)
        shift = g.normal(0.0, 1.0, n_regimes)
        k = (np.full(total, int(per_subject)) if per_subject != "varied"
             else 1 + g.geometric(0.1, total))
        if nested:
            counts = np.zeros((total, n_regimes), dtype=np.int64)
            counts[np.arange(total), np.arange(total) // subjects] = k
        else:
            counts = g.multinomial(k, [1 / n_regimes] * n_regimes)
        mu = level[:, None] + shift[None, :]
        mu[:, -1] += interaction * treat
        safe = np.maximum(counts, 1)
        if binary:
            p = 1 / (1 + np.exp(-(mu - 1.0) * 1.5))
            means = g.binomial(counts, p) / safe
        else:
            means = mu + g.normal(0.0, 1.0, mu.shape) * np.sqrt((1 - icc) / safe)
        regs = []
        for r in range(n_regimes):
            arms = {}
            for name, mask in (("treatment", treat), ("control", ~treat)):
                m = means[mask & (counts[:, r] > 0), r]
                exposures = int(counts[mask, r].sum())
                arms[name] = regimes.ArmMetric(
                    exposures, len(m), exposures, None, None, len(m),
                    float(m.mean()) if len(m) else None,
                    float(m.std(ddof=1)) if len(m) > 1 else None)
            regs.append(regimes.Regime(f"R{r + 1}", {}, r, r, int(counts[:, r].sum()), arms))
        test = regimes.interaction(regs, "treatment", "control")
        return test.p_value is not None and test.p_value < alpha
    return fires


NULL = "2 regimes, subjects nested, 10 exposures each, ICC 0.5, 200 subjects per regime"
ROWS = " (exposure rows through regimes.split)"
THREE = "3 regimes, nested, 1 + geometric exposures (mean 10), ICC 0.3"
SMALL = "3 regimes, nested, 8 subjects per regime (~4 per arm), 1 + geometric exposures, ICC 0.3"
SCENARIOS = [
    Scenario("MW404", NULL + ROWS, 0.05, _fires(0.05), reps=1500),
    Scenario("MW404", NULL, 0.05, _fast(0.05), reps=5000),
    Scenario("MW404", NULL + " (alpha 0.001)", 0.001, _fast(0.001), reps=150000),
    Scenario("MW404", THREE, 0.05, _fast(0.05, per_subject="varied", icc=0.3, n_regimes=3),
             reps=5000),
    Scenario("MW404", THREE + ROWS, 0.05,
             _fires(0.05, per_subject="varied", icc=0.3, n_regimes=3), reps=1500),
    Scenario("MW404", THREE + " (alpha 0.001)", 0.001,
             _fast(0.001, per_subject="varied", icc=0.3, n_regimes=3), reps=150000),
    Scenario("MW404", SMALL, 0.05,
             _fast(0.05, subjects=8, per_subject="varied", icc=0.3, n_regimes=3), reps=5000,
             tags=("small arms",)),
    Scenario("MW404", "2 regimes, nested, binary metric (clicks), 20 exposures, ICC 0.5", 0.05,
             _fast(0.05, per_subject=20, binary=True), reps=3000),
    Scenario("MW404", "2 regimes, subjects crossed over both, 10 exposures, ICC 0.5", 0.05,
             _fast(0.05, nested=False, subjects=400), reps=3000),
    Scenario("MW404", "2 regimes, independent exposures (ICC 0), 40 subjects per regime", 0.05,
             _fires(0.05, icc=0.0, subjects=40), reps=2000),
    Scenario("MW404", NULL, 0.05, _fast(0.05, interaction=0.3),
             effect="treatment +0.3 SD in the second regime only", reps=1000),
    Scenario("MW404", NULL, 0.05, _fast(0.05, interaction=0.5),
             effect="treatment +0.5 SD in the second regime only", reps=1000),
    Scenario("MW404", NULL + ROWS, 0.05, _fires(0.05, interaction=0.3),
             effect="treatment +0.3 SD in the second regime only", reps=200),
]
