"""MW404's "effect differs by regime" claim on null cases (seeded, seconds): see
bench/calib/mw404.py. Counting a subject's repeated exposures as independent, the nested
ICC-0.5 case claimed an interaction in ~40% of null runs (24 of these 60 expected, at most
10 allowed); the clicks case in ~26% (16 expected). Referred to chi-square rather than
Welch's F, Q claimed it in 11% of the small case (~4 subjects per arm and regime: 330 of
3,000 null runs; about 220 of these 2,000 expected, at most 178 allowed); Welch's F, 4.5%."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from calib.mw404 import NULL, ROWS, SMALL, THREE
from modelward.rollout import regimes

from .rule import assert_holds


@pytest.mark.parametrize(("name", "reps"), [
    (NULL + ROWS, 60),
    ("2 regimes, nested, binary metric (clicks), 20 exposures, ICC 0.5", 400),
    ("2 regimes, independent exposures (ICC 0), 40 subjects per regime", 60),
    (THREE, 600),
    (SMALL, 2000),
])
def test_null_holds_its_level(name, reps):
    assert_holds("MW404", name, reps=reps)


def test_welch_correction_is_chi_square_with_many_subjects_and_wider_with_few():
    d, se = [0.1, -0.2, 0.3], [0.1, 0.12, 0.09]
    q, f, nu2, p = regimes.heterogeneity(d, se, [1e9, 1e9, 1e9])
    w = 1 / np.square(se)
    pooled = (w * d).sum() / w.sum()
    assert q == pytest.approx((w * (np.array(d) - pooled) ** 2).sum())
    assert p == pytest.approx(stats.chi2.sf(q, 2), rel=1e-6)
    q_small, f_small, nu2_small, p_small = regimes.heterogeneity(d, se, [8, 10, 6])
    assert q_small == pytest.approx(q) and nu2_small < 40 and p_small > p
    # two regimes: F(1, 1/L) with L = sum (1 - w/W)^2 / df
    q2, f2, nu2_2, p2 = regimes.heterogeneity([0.0, 0.5], [0.2, 0.2], [10, 10])
    assert (f2, nu2_2) == (pytest.approx(q2), pytest.approx(1 / (2 * 0.25 / 10)))
    assert p2 == pytest.approx(stats.f.sf(q2, 1, 20))
