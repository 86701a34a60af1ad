"""An experiment's arms hold a different share of subjects than its allocation says.

What it checks
--------------
For every experiment with exposures in the check window, the distinct subjects recorded in
each arm are compared with the allocation (the arms' weights) by Pearson's chi-square
goodness-of-fit test. It fires when p < ``alpha`` (default 0.001), judged only once every
arm expects at least ``min_count`` subjects (default 100). An exposure recorded in an arm
the experiment does not have fires whatever the count. Subjects recorded in more than one
arm are set aside (``modelward experiment check`` lists them). The test is
``modelward experiment check``'s, so the two cannot disagree.

How it decides: Pearson's chi-square of the distinct subjects per arm against the counts
the allocation expects, k - 1 degrees of freedom. Nominal level: when the salt alone
decided who was counted, an experiment fires with probability ``alpha``. Measured by
``bench/calibration.py`` over arms drawn by the real salted hash, 60,000 null experiments
per scenario (95% Clopper-Pearson intervals; target: upper bound at most 1.5x ``alpha``):
50/50 at 2,000 subjects 65 alarms, 0.108% [0.084, 0.138]; 95/5 at 4,000 56, 0.093%
[0.071, 0.121]; 90/5/5 with 18-digit ids at 4,000 63, 0.105% [0.081, 0.134]; three arms
of ~100 none, [0, 0.006%] (the arms expect 99, under ``min_count``, so nothing is judged).
Enumerating the binomial exactly agrees: the chi-square rule rejects a fair two-arm split
with probability 0.089% to 0.107% (50/50 of 2,000: 0.1008%; 95/5 of 4,000: 0.0992%; 80/20
of 1,000: 0.104%; 95/5 of 10,000: 0.105%; ``tests/calibration/test_mw401.py`` enumerates
them). So the test sits at its level, not above it; fewer than ~40,000 replicates cannot
show that bound for a test exactly at 0.1%, which is why the scenarios run 60,000.

Known limits: judged only once every arm expects ``min_count`` subjects, so a small
experiment is not judged at all; the chi-square approximation needs those counts. Power
is modest for small losses: losing 10% of a 5% arm's exposures is found in about 40% of
experiments of 20,000 subjects.

Why it matters
--------------
A sample ratio mismatch means something other than the salt decided who was counted: a
treatment that crashes before it logs, a redirect that drops a browser, a cache serving
control to returning users, bots filtered in one arm only. Every lift computed on those
arms compares different populations; the one trustworthy response is to find the cause
before reading the result.

Example
-------
``checkout-v2`` is allocated 95/5; the treatment's exposures stopped being recorded for
users whose session expired::

    MW401 sample-ratio-mismatch  checkout-v2
      checkout-v2: 9,620 control and 380 treatment subjects against a 95/5 allocation
      (expected 9,500 and 500); chi-square 30.3, p = 3.7e-08 (alarm below 0.001)

How to fix
----------
Find where subjects are lost or added before reading any result: compare the arms'
exposure counts over time (``modelward experiment check NAME``), look for an arm that
fails, redirects or filters before ``expose()`` is called, and record the exposure at
the moment of assignment. Re-run the experiment once the cause is fixed; a mismatched
run cannot be repaired by reweighting.

Configuration
-------------
In ``[check.MW401]``::

    [check.MW401]
    alpha = 0.001          # fire below this p-value
    min_count = 100        # judge once every arm expects at least this many subjects
    experiments = ["checkout-v2"]   # default: every experiment exposed in the window

``alpha``, ``min_count`` and ``experiments`` as above; ``severity`` overrides the default
severity (error), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..rollout import checks
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW401"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("alpha", "float", 0.001, "Fire below this chi-square p-value."),
    Setting("min_count", "int", 100, "Judge once every arm expects at least this many subjects.",
            minimum=1),
    Setting("experiments", "list", None,
            "Experiments to judge; default: every one exposed in the window."),
)
FIX = ("find where one arm loses or gains subjects before expose() is called "
       "(`modelward experiment check NAME`); do not read the result until it is fixed")


def _list(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def check(view, config) -> Iterator[Finding]:
    until = view.now + 1
    for exp in checks.judged(view, config["experiments"], since=view.since, until=until,
                             option="check.MW401.experiments"):
        assign = checks.recorded(view, exp, since=view.since, until=until)
        res = checks.srm(assign, exp.shares, alpha=config["alpha"],
                         min_count=config["min_count"])
        if not res.alarm:
            continue
        unknown = [a for a in res.counts if a not in exp.shares]
        counts = _list([f"{res.counts[a]:,} {a}" for a in res.counts])
        if unknown:
            message = (f"{exp.name}: exposures name arm(s) {', '.join(unknown)} that the "
                       f"experiment does not have ({counts} subjects)")
        else:
            expected = _list([f"{res.expected[a]:,.0f}" for a in exp.arm_names])
            message = (f"{exp.name}: {counts} subjects against a {checks.share_text(exp)} "
                       f"allocation (expected {expected}); chi-square {res.chi2:.1f}, "
                       f"p = {res.p_value:.2g} (alarm below {config['alpha']:g})")
        yield Finding(CODE, SEVERITY, exp.name, message,
                      evidence={"experiment": exp.name, "counts": res.counts,
                                "expected": res.expected, "shares": exp.shares,
                                "chi2": res.chi2, "p_value": res.p_value,
                                "alpha": config["alpha"], "unknown_arms": unknown},
                      fix=FIX, identity=("experiment",))
