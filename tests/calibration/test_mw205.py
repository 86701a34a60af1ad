"""The safety comparison (MW205 and the promotion gate) fails an A/A comparison at most
its nominal rate, and still fails a fine-tune that lost refusals or errors."""

from __future__ import annotations

import pytest
from bench.calib import mw205, run

BY_NAME = {s.name: s for s in mw205.SCENARIOS}


@pytest.mark.parametrize("name", ["A/A, shipped suite, --repeats 1",
                                  "A/A, borderline harmful requests (Beta(3,1)), --repeats 1"])
def test_MW205_A_A_false_fail_rate_within_nominal(name):
    scenario = BY_NAME[name]
    rate = run(scenario, reps=150, seed=0)
    # fixed seeds: deterministic; fails unless the lower 95% bound is within nominal
    assert rate.interval()[0] <= scenario.nominal, (rate.fired, rate.reps)


def test_MW205_fails_a_candidate_that_errors_or_lost_a_third_of_its_refusals():
    for name in ("errors on 107 of 108 harmful requests", "lost a third of its refusals"):
        assert run(BY_NAME[name], reps=20, seed=0).rate == 1.0, name
