"""MW401's false-alarm rate on null cases (seeded, seconds): see bench/calib/mw401.py."""

from __future__ import annotations

import pytest

from .rule import assert_holds


@pytest.mark.parametrize("name", ["50/50 n=2000", "95/5 n=4000", "34/33/33 n=300 (small arms)"])
def test_null_holds_its_level(name):
    assert_holds("MW401", name, reps=300)

