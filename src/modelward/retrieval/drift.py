"""Has a retrieval gate's pass rate shifted? The query is the unit.

A gate decides on the candidates of one query at a time, and candidates of one query pass
or fail together (an easy query passes most of its candidates, a hard one few). Counting
candidates as independent trials makes a z-test of two pass rates many times too
confident. Here each side of a substrate change is a set of queries (decisions), query
*i* passing ``x_i`` of its ``n_i`` candidates, and the pass rate is the ratio estimator
``r = sum(x) / sum(n)``. Its variance is the cluster-robust (sandwich) one with the usual
small-sample factor,

    V = k / (k - 1) * sum((x_i - r * n_i)^2) / sum(n)^2        (k queries),

which with equal ``n_i`` is exactly the variance of the mean of the per-query pass
fractions. The null is "nothing changed", so the queries' spread is pooled over both
sides (Welch's separate variances let a small, skewed side estimate its own spread and
fired at 3-5x the nominal level in simulation), and the difference is judged by
Student's t on half the pooled degrees of freedom, (k1 + k2 - 2) / 2. Halving is a
measured allowance for per-query pass fractions that are skewed and discrete (a query
passes 0 of 20 often): on the full (k1 + k2 - 2) the rate was 1.0-1.4x nominal with 10-20
queries a side, halved it is 0.3-0.7x; with many queries the two agree. The figures a side needs are sums (queries, Σx, Σn, Σx², Σxn, Σn²), which the
ledger computes in SQL, so the test costs the same for a thousand or a billion decisions.
:func:`pass_rate_shift` backs MW502 and the calibration scenarios alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class GateSide:
    """One side of a substrate change: sums over its queries."""

    queries: int
    passed: int
    candidates: int
    sum_xx: float = 0.0  # Σ passed²
    sum_xn: float = 0.0  # Σ passed·candidates
    sum_nn: float = 0.0  # Σ candidates²

    @classmethod
    def of(cls, per_query: Iterable[tuple[int, int]]) -> GateSide:
        """From (passed, candidates) per query."""
        k = x = n = xx = xn = nn = 0
        for passed, candidates in per_query:
            k += 1
            x += passed
            n += candidates
            xx += passed * passed
            xn += passed * candidates
            nn += candidates * candidates
        return cls(k, x, n, xx, xn, nn)

    @property
    def rate(self) -> float:
        return self.passed / self.candidates if self.candidates else 0.0

    def residual(self) -> float:
        """Σ (x_i - r·n_i)²: the queries' squared deviations from the side's pass rate."""
        r = self.rate
        resid = self.sum_xx - 2 * r * self.sum_xn + r * r * self.sum_nn
        # the expansion cancels: what is left of rounding is not variation
        return resid if resid > 1e-12 * max(1.0, self.sum_xx) else 0.0


@dataclass(frozen=True)
class Shift:
    before: float
    after: float
    t: float | None  # None when neither side varies (the difference is exact)
    df: float | None
    p_value: float
    fires: bool

    @property
    def difference(self) -> float:
        return self.after - self.before


def pooled_t(before: GateSide, after: GateSide) -> tuple[float | None, float | None, float]:
    """(t, degrees of freedom, two-sided p) of the difference of the two pass rates, the
    per-query residual variance pooled over both sides."""
    diff = after.rate - before.rate
    k = before.queries + after.queries
    resid = before.residual() + after.residual()
    if k <= 2 or resid <= 0:
        return None, None, (1.0 if diff == 0 else 0.0)
    per_query = resid / (k - 2)
    se2 = per_query * (before.queries / before.candidates ** 2
                       + after.queries / after.candidates ** 2)
    t = diff / math.sqrt(se2)
    df = (k - 2) / 2  # halved: per-query fractions are skewed and discrete (see module doc)
    from scipy.stats import t as student_t

    return t, df, float(2 * student_t.sf(abs(t), df))


def pass_rate_shift(before: GateSide, after: GateSide, *, alpha: float, min_effect: float,
                    min_candidates: int, min_queries: int) -> Shift | None:
    """The comparison of two sides, or None when a side is too small to judge. It fires
    when the absolute difference is at least ``min_effect`` and Welch's p is below
    ``alpha``."""
    if (min(before.candidates, after.candidates) < min_candidates
            or min(before.queries, after.queries) < max(2, min_queries)):
        return None
    t, df, p = pooled_t(before, after)
    fires = abs(after.rate - before.rate) >= min_effect and p < alpha
    return Shift(before.rate, after.rate, t, df, p, fires)
