"""MW404's "effect differs by regime" claim on null cases (seeded, seconds): see
bench/calib/mw404.py. Counting a subject's repeated exposures as independent, the nested
ICC-0.5 case claimed an interaction in ~40% of null runs (24 of these 60 expected, at most
10 allowed); the clicks case in ~26% (16 expected)."""

from __future__ import annotations

import pytest

from calib.mw404 import NULL

from .rule import assert_holds


@pytest.mark.parametrize(("name", "reps"), [
    (NULL, 60),
    ("2 regimes, nested, binary metric (clicks), 20 exposures, ICC 0.5", 60),
    ("2 regimes, independent exposures (ICC 0), 40 subjects per regime", 60),
])
def test_null_holds_its_level(name, reps):
    assert_holds("MW404", name, reps=reps)
