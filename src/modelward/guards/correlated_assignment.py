"""An experiment's arms follow another experiment's arms, the subject id, or sign-up time.

What it checks
--------------
For every experiment with exposures in the check window:

* other experiments — over the subjects exposed in both (judged from ``min_shared`` shared
  subjects, default 100), an exact test that the two assignments are independent, with
  the observed/expected overlap of every pair of treatment arms;
* ID order — when at least 90% of subject ids end in a number: a Mann-Whitney test of that
  number between each treatment arm and control (assignment by id range, or ids that
  follow sign-up order), and exact tests of the arm against the id modulo 10 and 100
  (``id % 100 < 5`` bucketing);
* sign-up time — a Mann-Whitney test of every timestamp column (e.g. ``signup_at``) of
  the pre-period population (``pre_period``, else the one recorded at creation).

It fires when a test's Holm-adjusted p-value is below ``alpha`` (default 0.001). One
finding per correlated pair of experiments (reported on the first name) and per flagged
order test. ``modelward experiment check`` prints every test, flagged or not.

How it decides: every test of one run — each pair of experiments once, and each judged
experiment's ID-order and sign-up tests — is one family, Holm-adjusted together. Nominal
level: when every experiment was assigned by its own salt, a ``modelward check`` run reports
any MW403 finding with probability at most ``alpha``, however many experiments it judges.
Tested one by one at ``alpha``, 40 independent experiments (780 pairs) drew a false finding
in about half of all runs. Holm rather than Benjamini-Hochberg: a finding here is an alarm
that someone must run down, so the guarantee wanted is on any false alarm (family-wise), not
on their share among many findings; Holm gives it under any dependence between the tests
(pairs that share an experiment are dependent) and is uniformly more powerful than
Bonferroni.

Holm keeps its promise only if every p-value it is given is valid where it reads them: at
0.001 over hundreds of tests, near 1e-6. So the p-values are exact, not asymptotic:

* two experiments of two arms each: Fisher's exact test of their 2x2 table (conditional on
  the arm sizes; two-sided as twice the observed side's hypergeometric tail), computed by
  summing the tail term by term with a bound on the rest, so it is never understated;
* more arms on either side (e.g. 34/33/33), and the id residues (an arm against 10 or 100
  last digits): the table collapsed to one 2x2 table per cell, "this arm against the
  others" x "that arm (or residue) against the others", each by Fisher's test, and the
  test's p-value is the smallest of them times their number (Bonferroni within the test,
  so the test still counts once in Holm's family);
* the rank tests: Mann-Whitney's normal approximation, computed on the exact ranks of the
  ids (integers up to 18 digits, never floats); in the tail it overstates the p-value (the
  rank sum's tails are lighter than the normal's; checked against the exact distribution),
  so it keeps its level.

Pearson's chi-square, used before, is far off there: for two 95/5 experiments whose
treatment∩treatment cell expects 6 subjects, summed exactly over every table with those
margins, it rejects at 1e-6 16 times as often as it claims, and 4 times at 30 expected
(the exact test: at most as often). Its statistic is still reported (``chi2`` in the
evidence; Cramér's V of the residue tests), not used to decide. An exact test needs no
minimum count per cell, so sparse pairs are judged too (from ``min_shared`` subjects).

Calibration (``bench/calib/mw403.py``; false alarms per ``check`` run, where every
experiment has its own salt; 95% Clopper-Pearson interval; target: upper bound within 1.5x
the nominal 0.001):

| null scenario | false alarms | rate (95% interval) |
|---|---|---|
| 40 independent experiments over 5,000 users | 1 / 4,250 | 0.024% (0.0006-0.13%) |
| 40 independent experiments, 18-digit integer ids | 0 / 3,700 | 0% (0-0.1%) |
| 5 independent experiments over 20,000 users | 0 / 3,700 | 0% (0-0.1%) |
| two 95/5 experiments over the same 1,200 users | 3 / 7,000 | 0.043% (0.0088-0.13%) |

Power (a finding in the run, 100 runs each, before → after): a reused salt 100 → 99;
``id % 100 < 5`` bucketing 76 → 100 (the residue tests are judged at any size now); one of
40 experiments copying another's arm for 20% of its subjects 26 → 28, for 50% 54 → 66; of
two 95/5 experiments over 1,200 users, the second copying the first's arm for 20% of the
users 1 → 87, for 50% 0 → 100 (chi-square left that pair unjudged: its shared cell expects
3).

Known limits: the more experiments a run judges, the stronger a correlation must be to be
reported (1,000 tests at 0.001 need p below 1e-6 for the smallest); a reused salt or a
shared bucketing gives p-values far below that, a faint partial correlation may not. The
exact tests are conservative — Fisher's test is discrete, and tables of more than two arms
and the id residue tests pay a Bonferroni factor (3 for 34/33/33 against 95/5, 9 for two
three-arm experiments, 100 or more for ``id-mod-100``) — so a pattern spread thinly over
many cells (each residue a little off) is found later than a chi-square would find it; a
bucketing puts whole residues in one arm and is found at once. ``modelward experiment
check NAME`` adjusts over that experiment's tests only, so it can flag a test the guard,
adjusting over the whole run, does not.

Why it matters
--------------
A salted hash makes the arm independent of everything about the subject. Bucketing on
the raw id (``user_id % 100 < 5``) ties the arm to whatever the id encodes — sign-up
order, the seat in an organisation's block — and reusing one salt, or one bucket range,
across experiments puts the same users in every treatment, so each experiment's result
carries the others' effects.

Example
-------
``checkout-v2`` took ``id % 100 < 5``; ``search-rerank`` reused the same buckets::

    MW403 correlated-assignment  checkout-v2
      checkout-v2: the arm follows the subject id's last two digits (p = 1.1e-266 after
      Holm over 7 tests of this run; Cramér's V 1.00): a hash-free bucketing
    MW403 correlated-assignment  checkout-v2
      checkout-v2 and search-rerank share 20,000 subjects and their arms are not
      independent (Fisher's exact test, p = 0 after Holm over 7 tests of this run);
      treatment∩treatment holds 1,000 subjects, 20.0x the 50 expected

How to fix
----------
Assign with a salt per experiment (``modelward experiment create`` draws one, or searches
a balanced one with ``--balance-on``): ``modelward.assign(experiment, subject)`` hashes
the salt with the subject, so arms are independent of the id and of every other
experiment. Never bucket on the raw id or reuse another experiment's salt; if two
experiments must not overlap, make them mutually exclusive arms of one experiment.

Configuration
-------------
In ``[check.MW403]``::

    [check.MW403]
    alpha = 0.001
    min_shared = 100            # shared subjects needed to judge two experiments
    pre_period = "data/users-pre.csv"    # for sign-up time; default: recorded at creation
    subject_column = "subject"
    experiments = ["checkout-v2"]        # default: every experiment exposed in the window

``alpha``, ``min_shared``, ``pre_period``, ``subject_column`` and ``experiments`` as above;
``severity`` overrides the default severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import plural
from ..errors import ConfigError, ModelwardError
from ..ledger import experiments as ledger_experiments
from ..rollout import checks
from ..rollout.population import pre_period_of
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW403"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("alpha", "float", 0.001,
            "Fire below this p-value, Holm-adjusted over every test of the run."),
    Setting("min_shared", "int", 100, "Shared subjects needed to judge two experiments.",
            minimum=1),
    Setting("pre_period", "str", None,
            "Population with sign-up time columns; default: the one recorded at creation."),
    Setting("subject_column", "str", "subject", "The pre-period file's subject column."),
    Setting("experiments", "list", None,
            "Experiments to judge; default: every one exposed in the window."),
)
FIX = ("assign with a salt of its own (`modelward experiment create`; modelward.assign "
       "hashes salt and subject) instead of bucketing on the id or reusing a salt")
_WHAT = {"id-rank": "the subject id's order", "id-mod-10": "the subject id's last digit",
         "id-mod-100": "the subject id's last two digits"}


def limited(view, config) -> str | None:
    """MW403 runs its cross-experiment and ID-order tests anyway; the sign-up time test
    needs a pre-period population, configured or recorded at creation."""
    if config["pre_period"]:
        return None
    exps = checks.judged(view, config["experiments"], since=view.since, until=view.now + 1,
                         option="check.MW403.experiments")
    bare = [e.name for e in exps if pre_period_of(e) is None]
    if bare:
        return (f"no pre-period population for {plural(len(bare), 'experiment')}"
                ": the sign-up time test was not run (set "
                "pre_period in [check.MW403])")
    return None


def check(view, config) -> Iterator[Finding]:
    until = view.now + 1
    exps = checks.judged(view, config["experiments"], since=view.since, until=until,
                         option="check.MW403.experiments")
    names = {e.name for e in exps}
    assigns = {e.name: checks.recorded(view, e, since=view.since, until=until) for e in exps}
    for other in ledger_experiments.exposed_experiments(view, since=view.since, until=until):
        if other not in names:  # a counterpart, not judged itself
            exp = checks.experiment_of(view, other)
            assigns[other] = checks.recorded(view, exp, since=view.since, until=until)
    tables = {}
    for exp in exps:
        try:
            found = view.experiment_population(exp, {**config, "covariates": None}, CODE)
        except ConfigError:
            raise
        except ModelwardError:
            found = None  # MW402 reports an unreadable recorded population
        tables[exp.name] = found[0] if found else None
    family = checks.correlated_assignment(assigns, [e.name for e in exps], tables,
                                          alpha=config["alpha"],
                                          min_shared=config["min_shared"])
    tests = f"Holm over {family.tests:,} test{'s' if family.tests != 1 else ''} of this run"
    for exp in exps:
        for name, res in family.pairs:
            if name != exp.name or not res.alarm:
                continue
            worst = max(res.overlaps, key=lambda o: abs((o.ratio or 1) - 1), default=None)
            overlap = ""
            if worst is not None and worst.ratio is not None:
                overlap = (f"; {worst.arm}∩{worst.other_arm} holds {worst.observed:,} subjects, "
                           f"{worst.ratio:.1f}x the {worst.expected:,.0f} expected")
            yield Finding(
                CODE, SEVERITY, exp.name,
                f"{exp.name} and {res.other} share {res.shared:,} subjects and their arms are "
                f"not independent ({res.method}, p = {res.p_adjusted:.2g} after "
                f"{tests}){overlap}",
                evidence={"experiment": exp.name, "other": res.other, "shared": res.shared,
                          "method": res.method, "cells": res.cells,
                          "chi2": res.chi2, "p_value": res.p_value,
                          "p_adjusted": res.p_adjusted, "tests": family.tests,
                          "table": res.table, "overlaps": [o.__dict__ for o in res.overlaps]},
                fix=FIX, identity=("experiment", "other"))
        for t in family.order[exp.name]:
            if not t.flagged:
                continue
            what = _WHAT.get(t.test, f"{t.test.removesuffix('-rank')} order")
            arm = f"{t.arm} against control" if t.arm else "the arm"
            effect = (f"Cramér's V {t.effect:.2f}" if t.arm is None
                      else f"rank-biserial correlation {t.effect:+.2f}")
            yield Finding(
                CODE, SEVERITY, exp.name,
                f"{exp.name}: {arm} follows {what} (p = {t.p_adjusted:.2g} after {tests}; "
                f"{effect})" + (": a hash-free bucketing" if t.test.startswith("id-mod") else ""),
                evidence={"experiment": exp.name, "test": t.test, "arm": t.arm,
                          "statistic": t.statistic, "p_value": t.p_value,
                          "p_adjusted": t.p_adjusted, "tests": family.tests,
                          "effect": t.effect, "subjects": t.n},
                fix=FIX, identity=("experiment", "test", "arm"))
