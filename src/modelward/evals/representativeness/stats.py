"""Small, dependency-free statistics: the chi-square survival function and the tests on
category counts that representativeness (and the rollout checks) need.

``chi2_sf(x, k)`` is the regularized upper incomplete gamma function Q(k/2, x/2), computed
as in Numerical Recipes (§6.2): the series for P when x < a + 1, else the continued
fraction for Q by the modified Lentz method, both to full double precision. It agrees with
``scipy.stats.chi2.sf`` to better than 1e-11 relative, far tails included (tests/evals).
"""

from __future__ import annotations

import math

_EPS = 1e-16
_TINY = 1e-300
_MAX_ITER = 10_000


def _log_prefactor(a: float, x: float) -> float:
    return -x + a * math.log(x) - math.lgamma(a)


def _p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(_MAX_ITER):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(_log_prefactor(a, x))


def _q_fraction(a: float, x: float) -> float:
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(_log_prefactor(a, x)) * h


def gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a), the regularized upper incomplete gamma function."""
    if a <= 0:
        raise ValueError("a must be positive")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _p_series(a, x))
    return _q_fraction(a, x)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X chi-square distributed with ``dof`` degrees of freedom."""
    if dof <= 0:
        raise ValueError("degrees of freedom must be positive")
    return gamma_q(dof / 2.0, x / 2.0)


def chi2_goodness_of_fit(observed: list[int], expected_shares: list[float]
                         ) -> tuple[float | None, int, float | None]:
    """Pearson's statistic of ``observed`` counts against ``expected_shares`` (summing to
    1 over the same categories): (statistic, degrees of freedom, p-value).

    A category with an expected share of 0 that holds observations makes the statistic
    infinite and the p-value 0 (degrees of freedom: the categories either side has, less
    one). Otherwise, fewer than two categories with expected share > 0, or no
    observations, leave nothing to test: (None, 0, None)."""
    n = sum(observed)
    pairs = list(zip(observed, expected_shares, strict=True))
    if n and any(o > 0 and s <= 0 for o, s in pairs):
        return math.inf, sum(1 for o, s in pairs if o > 0 or s > 0) - 1, 0.0
    cats = [(o, s) for o, s in pairs if s > 0]
    if n == 0 or len(cats) < 2:
        return None, 0, None
    dof = len(cats) - 1
    stat = sum((o - n * s) ** 2 / (n * s) for o, s in cats)
    return stat, dof, chi2_sf(stat, dof)


def total_variation(p: list[float], q: list[float]) -> float:
    """Half the L1 distance between two distributions over the same categories."""
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True))
