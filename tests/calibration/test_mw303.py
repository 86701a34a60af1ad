"""MW303 holds its nominal false-alarm rate on eval sets drawn at random from traffic."""

from __future__ import annotations

import pytest
from bench.calib import mw303, run

NULL = {s.name: s for s in mw303.SCENARIOS if s.null}


@pytest.mark.parametrize("name", ["random sample of traffic, 20 items",
                                  "random sample of traffic, 40 items",
                                  "same mix, not from the window: 40 items vs 150 decisions"])
def test_MW303_false_alarm_rate_within_nominal(name):
    scenario = NULL[name]
    rate = run(scenario, reps=300, seed=0)
    # fixed seeds: deterministic; fails unless the lower 95% bound is within nominal
    # (the fixed ratio rule flagged 45-83% of these sets)
    assert rate.interval()[0] <= scenario.nominal, (rate.fired, rate.reps)


def test_MW303_still_finds_enterprise_at_a_quarter_of_its_share():
    [scenario] = [s for s in mw303.SCENARIOS if s.effect and "enterprise" in s.name]
    assert run(scenario, reps=60, seed=0).rate >= 0.7
