"""MW403's false-alarm rate per ``check`` run on null cases (seeded): see
bench/calib/mw403.py, and the exact level of its pair test, summed over every table.

Testing every pair at 0.001 with no multiplicity control, a run over 40 independent
experiments carried a false finding about half the time (6 of these 12 expected, at most 1
allowed). With Holm over the run but Pearson's chi-square per pair, two 95/5 experiments
whose treatment∩treatment cell expects 6 subjects were rejected at 1e-6 16x as often as
claimed (4x at 30 expected): the pair test below fails on chi-square, passes on the exact
test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from calib.mw403 import NULL, SPARSE
from modelward.rollout import balance
from modelward.rollout import exact as exact_tests

from .rule import assert_holds


def test_a_run_over_40_independent_experiments_holds_its_level():
    assert_holds("MW403", NULL, reps=12)


def test_a_run_over_5_experiments_and_20000_users_holds_its_level():
    assert_holds("MW403", "5 independent experiments over 20,000 users", reps=20)


def test_a_sparse_pair_of_small_arms_holds_its_level():
    assert_holds("MW403", SPARSE, reps=100)


def _exact_size(n: int, r: int, c: int, alpha: float, test) -> float:
    """P(p-value <= alpha) under independence, given the margins: summed over every table."""
    x = np.arange(max(0, r + c - n), min(r, c) + 1)
    pmf = stats.hypergeom.pmf(x, n, r, c)
    p = np.array(test([np.array([[k, r - k], [c - k, n - r - c + k]]) for k in x]))
    return float(pmf[p <= alpha].sum())


@pytest.mark.parametrize("n,r,c", [(2400, 120, 120), (1200, 60, 60), (600, 30, 60),
                                   (12_000, 600, 600)])
def test_the_pair_test_holds_its_level_deep_in_the_tail_where_chi_square_does_not(n, r, c):
    """Two 95/5 experiments sharing n subjects: the treatment∩treatment cell expects
    r*c/n (6, 3, 3, 30). Summed exactly over every table with these margins, Pearson's
    chi-square rejects at 1e-6 4-50x as often as it claims; the exact test never above."""
    def exact(tables):  # what the guard runs on a run's pairs, in one pass
        return [p for p, _ in exact_tests.exact_independence(tables)]

    def pearson(tables):
        return [balance.pearson(t)[1] for t in tables]

    for alpha in (1e-4, 1e-5, 1e-6, 1e-7):
        assert _exact_size(n, r, c, alpha, exact) <= alpha
    assert _exact_size(n, r, c, 1e-6, pearson) > 4e-6
