"""The test rule for a guard's false-alarm rate: a seeded run of a null scenario fails when
its count of false alarms is beyond what a guard firing at 1.5x its nominal level would
produce once in a hundred runs. A guard at its nominal level passes with room to spare;
a guard at 2-3x nominal fails at the replicate counts the tests use (each test says so).
``bench/`` is on the path (conftest.py)."""

from __future__ import annotations

from scipy.stats import binom

import calib


def allowed(reps: int, nominal: float, slack: float = 1.5) -> int:
    """The most false alarms a seeded run of ``reps`` may show: the 99th percentile of the
    count a guard firing at ``slack`` x nominal would show."""
    return int(binom.ppf(0.99, reps, min(1.0, slack * nominal)))


def scenario(guard: str, name: str):
    module = __import__(f"calib.{guard.lower()}", fromlist=["SCENARIOS"])
    for s in module.SCENARIOS:
        if s.name == name and s.null:
            return s
    raise LookupError(f"{guard}: no null scenario {name!r}")


def assert_holds(guard: str, name, reps: int, seed: int = 7) -> calib.Rate:
    """Run the null scenario ``name`` of ``guard`` (or a Scenario) ``reps`` times; fail on
    an excess."""
    s = name if isinstance(name, calib.Scenario) else scenario(guard, name)
    assert s.null, f"{s.name} plants an effect: not a null scenario"
    rate = calib.run(s, reps=reps, seed=seed)
    limit = allowed(reps, s.nominal)
    assert rate.fired <= limit, (
        f"{guard} {s.name}: {rate.fired} false alarms in {reps} null runs "
        f"(rate {rate.rate:.3f}, nominal {s.nominal:g}; at most {limit} allowed)")
    return rate
