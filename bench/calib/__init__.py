"""Calibration of the statistical guards: null scenarios (nothing changed) and planted
effects, simulated many times, to measure each guard's false-alarm rate and power.

One module per guard (``bench/calib/mw402.py``, ...) exports ``SCENARIOS``: a list of
``Scenario``. ``bench/calibration.py`` (``make bench``) runs them all at full size and
prints one figure per scenario; ``tests/calibration/`` runs a seeded subset of the null
scenarios and fails when a guard's false-alarm rate exceeds its nominal level (the upper
95% Monte-Carlo bound above 1.5x nominal).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from scipy.stats import beta


@dataclass(frozen=True)
class Scenario:
    guard: str                     # "MW402"
    name: str                      # "90/5/5 n=1000, realistic covariates"
    nominal: float                 # the level the guard claims (0.05, 0.001, ...)
    fires: Callable[[random.Random], bool]  # one simulated case: does the guard fire?
    effect: str | None = None      # None: a null case; else the planted effect (power)
    reps: int = 1000               # replicates for the full-size figure
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def null(self) -> bool:
        return self.effect is None


@dataclass(frozen=True)
class Rate:
    fired: int
    reps: int

    @property
    def rate(self) -> float:
        return self.fired / self.reps if self.reps else 0.0

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of the rate."""
        a = (1 - level) / 2
        lo = 0.0 if self.fired == 0 else float(beta.ppf(a, self.fired, self.reps - self.fired + 1))
        hi = 1.0 if self.fired == self.reps else float(
            beta.ppf(1 - a, self.fired + 1, self.reps - self.fired))
        return lo, hi


def run(scenario: Scenario, reps: int | None = None, seed: int = 0) -> Rate:
    """Simulate ``reps`` cases of ``scenario``, each from its own seeded generator."""
    reps = scenario.reps if reps is None else reps
    fired = sum(bool(scenario.fires(random.Random(f"{scenario.guard}/{scenario.name}/{seed}/{i}")))
                for i in range(reps))
    return Rate(fired, reps)


def calibrated(scenario: Scenario, rate: Rate, slack: float = 1.5) -> bool:
    """The target: the upper 95% bound of a null rate within ``slack`` x nominal. A small
    run's upper bound is wide, so a test with few reps only fails on a clear excess:
    it uses ``rate.rate <= slack * nominal`` together with this bound at full size."""
    return rate.interval()[1] <= slack * scenario.nominal
