"""Calibration of the statistical guards: false-alarm rate and power, by simulation.

Imports every ``bench/calib/mw*.py`` module (each exports ``SCENARIOS``), simulates each
scenario ``reps`` times through the guard's own decision function and prints one JSON line
per scenario::

    {"bench": "calibration", "figure": "MW402/90-5-5 n=1000 ...", "value": 0.043,
     "unit": "rate", "guard": "MW402", "scenario": "...", "kind": "null", "nominal": 0.05,
     "rate": 0.043, "interval": [0.031, 0.058], "fired": 43, "reps": 1000,
     "calibrated": true, "seconds": 12.3}

``kind`` is ``null`` (nothing changed: the rate is the false-alarm rate, ``calibrated`` says
whether the upper 95% Clopper-Pearson bound is within 1.5x nominal; ``within_point`` whether
the rate itself is) or ``effect`` (a planted effect, named in ``effect``: the rate is the
power). A nominal level of 0.001 needs about 2,500 replicates before a clean guard's upper
bound can fall under 0.0015; scenarios set their own ``reps`` accordingly. ``--quick`` runs few replicates (a smoke
test, not figures to quote); ``--strict`` exits 1 when a null scenario is not calibrated.
Long: run it under ``nice`` (``--nice 10`` does it for you).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import _common as c

BENCH = "calibration"
QUICK_REPS = 60


def calib_modules() -> list[str]:
    """The scenario modules present, by file name (``mw402``, ...): a new guard's module
    joins without editing this file."""
    return sorted(p.stem for p in (c.BENCH_DIR / "calib").glob("mw*.py"))


def load_scenarios(only: list[str] | None = None) -> list:
    if str(c.BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(c.BENCH_DIR))
    scenarios = []
    for name in calib_modules():
        module = importlib.import_module(f"calib.{name}")
        for scenario in module.SCENARIOS:
            if only and not any(scenario.guard.upper().startswith(o.upper()) for o in only):
                continue
            scenarios.append(scenario)
    return scenarios


def figure(scenario, rate, seconds: float, *, quick: bool = False) -> dict:
    import calib

    lo, hi = rate.interval()
    line = {"guard": scenario.guard, "scenario": scenario.name,
            "kind": "null" if scenario.null else "effect",
            "nominal": scenario.nominal, "rate": round(rate.rate, 5),
            "interval": [round(lo, 5), round(hi, 5)], "fired": rate.fired, "reps": rate.reps,
            "seconds": round(seconds, 2)}
    if scenario.null:
        # a quick run's interval is too wide to show calibration: say only whether the
        # point estimate is within the slack
        line["calibrated"] = None if quick else calib.calibrated(scenario, rate)
        line["within_point"] = rate.rate <= 1.5 * scenario.nominal
    else:
        line["effect"] = scenario.effect
    if scenario.tags:
        line["tags"] = list(scenario.tags)
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_REPS} replicates per scenario: a smoke test")
    ap.add_argument("--reps", type=int, help="replicates per scenario (overrides each default)")
    ap.add_argument("--guard", action="append", metavar="CODE",
                    help="only the guards whose code starts with CODE (repeatable)")
    ap.add_argument("--scenario", help="only scenarios whose name contains this text")
    ap.add_argument("--null-only", action="store_true", help="skip the planted effects")
    ap.add_argument("--effects-only", action="store_true", help="only the planted effects")
    ap.add_argument("--seed", type=int, default=0, help="seed of the replicates' generators")
    ap.add_argument("--nice", type=int, default=0, help="lower this process's priority first")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a null scenario exceeds its target")
    args = ap.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        ap.error("--reps must be at least 1")
    if args.nice:
        os.nice(args.nice)

    import calib

    scenarios = load_scenarios(args.guard)
    if args.scenario:
        scenarios = [s for s in scenarios if args.scenario in s.name]
    if args.null_only:
        scenarios = [s for s in scenarios if s.null]
    if args.effects_only:
        scenarios = [s for s in scenarios if not s.null]
    if not scenarios:
        c.note("calibration: no scenario matches")
        return 2
    failed = []
    for scenario in scenarios:
        reps = args.reps or (min(QUICK_REPS, scenario.reps) if args.quick else scenario.reps)
        c.note(f"{scenario.guard} {scenario.name}: {reps} replicates")
        t0 = time.perf_counter()
        rate = calib.run(scenario, reps=reps, seed=args.seed)
        line = figure(scenario, rate, time.perf_counter() - t0, quick=args.quick)
        label = f"{scenario.guard}/{scenario.name}" + (
            f" [{scenario.effect}]" if scenario.effect else "")
        c.emit(BENCH, label, rate.rate, "rate",
               **({"quick": True} if args.quick else {}), **line)
        if scenario.null and (line["calibrated"] is False or not line["within_point"]):
            failed.append(f"{scenario.guard} {scenario.name}")
    if failed:
        c.note("above target (upper 95% bound > 1.5x nominal): " + "; ".join(failed))
        if args.strict:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
