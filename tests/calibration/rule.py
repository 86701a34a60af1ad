"""The test rule for a guard's false-alarm rate: a seeded run of a null scenario fails when
its count of false alarms is beyond what a guard firing at 1.5x its nominal level would
produce once in a thousand runs. A guard at its nominal level passes with room to spare;
a guard at 3x nominal fails at the replicate counts the tests use (each test says so)."""

from __future__ import annotations

import sys
from pathlib import Path

from scipy.stats import binom

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:  # bench/ is not a package of the install: its scenarios are
    sys.path.insert(0, str(BENCH))  # imported from the checkout, as bench/calibration.py does

import calib  # noqa: E402


def allowed(reps: int, nominal: float, slack: float = 1.5) -> int:
    """The most false alarms a seeded run of ``reps`` may show."""
    return int(binom.ppf(0.999, reps, min(1.0, slack * nominal)))


def scenario(guard: str, name: str):
    module = __import__(f"calib.{guard.lower()}", fromlist=["SCENARIOS"])
    for s in module.SCENARIOS:
        if s.name == name and s.null:
            return s
    raise LookupError(f"{guard}: no null scenario {name!r}")


def assert_holds(guard: str, name: str, reps: int, seed: int = 7) -> calib.Rate:
    """Run the null scenario ``name`` of ``guard`` ``reps`` times; fail on an excess."""
    s = scenario(guard, name)
    rate = calib.run(s, reps=reps, seed=seed)
    limit = allowed(reps, s.nominal)
    assert rate.fired <= limit, (
        f"{guard} {name}: {rate.fired} false alarms in {reps} null runs "
        f"(rate {rate.rate:.3f}, nominal {s.nominal:g}; at most {limit} allowed)")
    return rate
