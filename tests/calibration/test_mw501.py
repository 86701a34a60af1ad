"""MW501's fingerprint verdict on null cases (seeded, seconds): see bench/calib/mw501.py.
With the noise floor from back-to-back repeats only (3x the worst repeat's noise), an
embedder whose noise varies between runs was called ``changed`` in ~98% of unchanged
pairs of runs (about 294 of these 300, at most 10 allowed), and an update to per-probe
cosine 0.98 behind a noisy API read ``same`` every time."""

from __future__ import annotations

import pytest

from calib import mw501, run

from .rule import assert_holds


@pytest.mark.parametrize("name", [
    "noise varying between runs, quiet repeats",
    "noise varying between runs, quiet repeats, 3 baseline runs",
    "noise varying between runs, noisy repeats",
    "steady noisy API, no change",
])
def test_null_holds_its_level(name):
    assert_holds("MW501", name, reps=300)


def test_finds_an_update_to_cosine_0_98_behind_a_noisy_api():
    [scenario] = [s for s in mw501.SCENARIOS
                  if s.name == "update to cosine 0.98 behind a noisy API"]
    assert run(scenario, reps=100, seed=0).rate >= 0.9
