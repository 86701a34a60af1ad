"""The chi-square survival function and the category tests behind `evalset compare`."""

from __future__ import annotations

import math

import pytest

from modelward.evals.representativeness.stats import (
    chi2_goodness_of_fit,
    chi2_sf,
    gamma_q,
    total_variation,
)

# scipy.stats.chi2.sf(x, k) (scipy 1.17), kept here so the test needs no scipy
REFERENCE = [
    (3.841458820694124, 1, 0.04999999999999989),
    (18.307038053275146, 10, 0.05000000000000005),
    (0.5, 3, 0.9188914116546758),
    (100, 3, 1.5541594313896026e-21),
    (1e-08, 2, 0.999999995),
    (250, 200, 0.009379131668826098),
    (1500, 1000, 1.0454640385980825e-22),
    (0.001, 1, 0.9747728793699604),
    (7.5, 1, 0.0061698993205441645),
    (30, 5, 1.4748581038443073e-05),
    (1000, 1, 1.7958327848007363e-219),
]


@pytest.mark.parametrize("x, k, expected", REFERENCE)
def test_chi2_sf_matches_reference_values(x, k, expected):
    assert chi2_sf(x, k) == pytest.approx(expected, rel=1e-11)


def test_chi2_sf_closed_forms_and_edges():
    for x in (0.1, 1.0, 7.3, 40.0, 700.0):
        assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-12)  # k=2: e^(-x/2)
        assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-11)
    assert chi2_sf(0, 3) == 1.0 and chi2_sf(-1, 3) == 1.0 and chi2_sf(math.inf, 3) == 0.0
    assert gamma_q(1.0, 2.0) == pytest.approx(math.exp(-2.0), rel=1e-14)
    with pytest.raises(ValueError):
        chi2_sf(1.0, 0)
    # monotone in x, and never outside [0, 1]
    values = [chi2_sf(x / 4, 7) for x in range(0, 400)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_chi2_sf_agrees_with_scipy_over_a_grid():
    stats = pytest.importorskip("scipy.stats")
    worst = 0.0
    for k in (1, 2, 3, 4, 5, 7, 10, 30, 100, 1000, 5000):
        for x in (1e-10, 1e-3, 0.1, 0.5, 1, k / 2, k - 1, k, k + 1, 2 * k, 5 * k, 10 * k + 50,
                  500, 1400):
            expected = float(stats.chi2.sf(x, k))
            got = chi2_sf(x, k)
            if expected == 0.0:
                assert got < 1e-300
                continue
            worst = max(worst, abs(got - expected) / expected)
    assert worst < 1e-11


def test_goodness_of_fit_and_total_variation():
    stat, dof, p = chi2_goodness_of_fit([32, 6, 2], [0.5, 0.2, 0.3])
    assert (round(stat, 6), dof) == (16.033333, 2)
    assert p == pytest.approx(math.exp(-stat / 2), rel=1e-12)
    assert chi2_goodness_of_fit([20, 8, 12], [0.5, 0.2, 0.3]) == (0.0, 2, 1.0)
    # observations where traffic has none: the fit is impossible
    assert chi2_goodness_of_fit([5, 5, 1], [0.5, 0.5, 0.0]) == (math.inf, 2, 0.0)
    # a category neither side has is ignored
    assert chi2_goodness_of_fit([5, 5, 0], [0.5, 0.5, 0.0]) == (0.0, 1, 1.0)
    assert chi2_goodness_of_fit([3], [1.0]) == (None, 0, None)
    assert chi2_goodness_of_fit([0, 0], [0.5, 0.5]) == (None, 0, None)
    assert chi2_goodness_of_fit([0, 2], [1.0, 0.0]) == (math.inf, 1, 0.0)
    assert total_variation([0.8, 0.15, 0.05], [0.5, 0.2, 0.3]) == pytest.approx(0.3)
