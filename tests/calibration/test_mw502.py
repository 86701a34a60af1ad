"""MW502 holds its nominal false-alarm rate on unchanged gates whose queries' candidates
pass together, and still finds a planted drop."""

from __future__ import annotations

import pytest
from bench.calib import mw502, run

NULL = {s.name: s for s in mw502.SCENARIOS if s.null}


@pytest.mark.parametrize("name", ["20 candidates/query, 10 vs 100 queries",
                                  "20 candidates/query, 10-100 queries a side",
                                  "5-50 candidates/query, 10-100 queries a side"])
def test_MW502_false_alarm_rate_within_nominal(name):
    scenario = NULL[name]
    rate = run(scenario, reps=1500, seed=0)
    # fixed seeds: deterministic; fails unless the lower 95% bound is within nominal
    # (the pooled-candidate z-test fired on about 19% of these windows)
    assert rate.interval()[0] <= scenario.nominal, (rate.fired, rate.reps)


def test_MW502_still_finds_a_drop_from_35_to_25_percent_on_300_queries_a_side():
    [scenario] = [s for s in mw502.SCENARIOS if s.name == "35% -> 25%, 300 queries a side"]
    assert run(scenario, reps=100, seed=0).rate >= 0.75
