"""An experiment's arms differed on pre-period covariates before the treatment did anything.

What it checks
--------------
For every experiment with exposures in the check window and a pre-period population — the
file named by ``pre_period`` in ``[check.MW402]``, else the one recorded when the
experiment was created with ``--balance-on`` — the exposed subjects are joined with the
population by subject, and each numeric covariate is compared between every treatment arm
and control by its standardized mean difference (difference of means over the root mean of
the two variances). It fires for each covariate with |SMD| >= ``max_smd`` (default 0.1)
whose family-wise randomisation p-value is below ``alpha`` (default 0.05): an imbalance
large enough to matter, and one the salt would rarely produce by chance. Nominal level:
when the salt alone chose the arms, an experiment draws a finding in at most ``alpha`` of
checks (family-wise, over every covariate and arm). ``modelward experiment check NAME``
prints the full table.

How it decides: a salted assignment draws each subject's arm independently of the subject,
so, given the arms' sizes, every relabelling of the exposed subjects is equally likely. The
guard re-draws the labels ``draws`` times (default 1,000; a seeded generator, so the same
data give the same answer) and computes, for each draw, the largest |z| over every
covariate x treatment arm, where z is the SMD on the scale of its sampling error
(SMD x sqrt(n_arm n_control / (n_arm + n_control))). A covariate's family-wise p-value is
the share of draws (the observed one included) whose largest |z| reaches its own: the
max-T method, which controls the chance of any false finding in the experiment at
``alpha`` whatever the covariates' correlation. No normal approximation is made, so a rare
0/1 flag whose small arm holds no ones, a zero-inflated heavy-tailed spend, sequential ids
or missing ages are each judged by their own null distribution (a Welch t-test with a
Bonferroni correction fired in 15% to 64% of such null cases).

Measured (``bench/calib/mw402.py``, 4,000 null experiments each, 95% Clopper-Pearson;
target: upper bound at most 1.5x ``alpha``, i.e. 7.5%): a 0/1 covariate of 4% prevalence
at 95/5 over 1,000 subjects 58 alarms, 1.45% [1.10, 1.87]; 90/5/5 over 1,000 with
realistic covariates (sequential ids, sign-up time, zero-inflated spend, a rare
enterprise flag, age with missing values) 218, 5.45% [4.77, 6.20]; 50/50 over 1,000 187,
4.68% [4.04, 5.38]; 80/15/5 over 2,000 189, 4.73% [4.09, 5.43].

Known limits: the reference is the relabelling of the subjects actually exposed, with the
arms' sizes as recorded; a mismatch of the sizes themselves is MW401's question. An
experiment created with ``--balance-on`` kept the most balanced of many salts, so its
arms are more balanced than a random salt's and the test is conservative for it (fewer
false alarms, not more). With 1,000 draws the smallest p-value is 1/1,001, and the cost
grows with draws x exposed subjects: about 7 CPU-seconds for 100,000 subjects and two
covariates at 1,000 draws; lower ``draws`` for very large experiments (the p-value stays
valid, only coarser).

Why it matters
--------------
The canary took the users in buckets ``hash(user_id) % 100 < 5``. The ids were sequential
and organisations' admins — the heaviest users — took the first seats of each block, so
the canary held three times the activity of control before anything changed. The
"lift" was the cohort. Balance on pre-period behaviour is the cheapest evidence that
the arms are comparable.

Example
-------
``checkout-v2``'s treatment was assigned by ``id % 100 < 5``::

    MW402 covariate-imbalance  checkout-v2
      checkout-v2: treatment differs from control on sessions_30d before the experiment:
      mean 41.2 against 13.9 (SMD 0.93, |SMD| >= 0.1; family-wise p = 0.001 over 2 tests,
      1,000 re-randomisations)

How to fix
----------
Do not trust the result: re-run with a salted, balance-searched assignment (``modelward
experiment create NAME --arms … --balance-on pre.csv --covariates …``), which picks the
salt whose assignment is most balanced on the pre-period population. For a finished
experiment, report the effect adjusted for the covariate (CUPED or regression) alongside,
never instead of, the fix.

Configuration
-------------
In ``[check.MW402]``::

    [check.MW402]
    pre_period = "data/users-pre.csv"   # or a dataset digest; default: recorded at creation
    subject_column = "subject"
    covariates = ["sessions_30d", "spend_90d"]   # default: every numeric column
    max_smd = 0.1
    alpha = 0.05
    draws = 1000                        # re-randomisations behind the p-value
    experiments = ["checkout-v2"]       # default: every experiment exposed in the window

``pre_period`` (a CSV or JSONL path relative to modelward.toml, or the digest of a stored
dataset), ``subject_column``, ``covariates``, ``max_smd``, ``alpha``, ``draws`` and
``experiments``
as above; ``severity`` overrides the default severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import plural
from ..errors import ConfigError, ModelwardError
from ..rollout import checks
from ..rollout.population import pre_period_of
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW402"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("pre_period", "str", None,
            "Pre-period population (CSV/JSONL path or dataset digest); default: the one "
            "recorded at creation."),
    Setting("subject_column", "str", "subject", "The pre-period file's subject column."),
    Setting("covariates", "list", None, "Covariates to compare; default: every numeric column."),
    Setting("max_smd", "float", 0.1, "Fire at or above this absolute SMD."),
    Setting("alpha", "float", 0.05, "… when the family-wise randomisation p-value is below "
            "this."),
    Setting("draws", "int", 1000, "Re-randomisations behind the p-value.", minimum=99),
    Setting("experiments", "list", None,
            "Experiments to judge; default: every one exposed in the window."),
)
FIX = ("re-run with a salted, balance-searched assignment (`modelward experiment create "
       "--balance-on`); do not read the lift of these arms")


def unconfigured(view, config) -> str | None:
    """Why MW402 cannot judge anything: experiments to judge, but no pre-period population
    (neither ``pre_period`` in the config nor one recorded when they were created)."""
    if config["pre_period"]:
        return None
    exps = checks.judged(view, config["experiments"], since=view.since, until=view.now + 1,
                         option="check.MW402.experiments")
    if exps and all(pre_period_of(e) is None for e in exps):
        return (f"no pre-period population for {plural(len(exps), 'experiment')}"
                ": set pre_period in [check.MW402] (or "
                "create experiments with --balance-on, which records one)")
    return None


def check(view, config) -> Iterator[Finding]:
    until = view.now + 1
    for exp in checks.judged(view, config["experiments"], since=view.since, until=until,
                             option="check.MW402.experiments"):
        try:
            found = view.experiment_population(exp, config, CODE)
        except ConfigError:
            raise
        except ModelwardError as exc:
            yield Finding(CODE, SEVERITY, exp.name,
                          f"{exp.name}: cannot read its recorded pre-period population "
                          f"({exc.message})",
                          evidence={"experiment": exp.name, "problem": "unreadable pre-period"},
                          fix="name a readable file in [check.MW402] pre_period",
                          identity=("experiment", "problem"))
            continue
        if found is None:
            continue
        table, src = found
        covariates, ref = src.covariates, src.ref
        assign = checks.recorded(view, exp, since=view.since, until=until)
        try:
            diffs, matched = checks.balance(assign, table, covariates, max_smd=config["max_smd"],
                                            alpha=config["alpha"], draws=config["draws"])
        except ModelwardError as exc:
            raise ConfigError(f"check.MW402: {getattr(exc, 'detail', exc.message)}") from None
        tests = sum(1 for d in diffs if d.p_value is not None)
        for d in diffs:
            if not d.flagged:
                continue
            yield Finding(
                CODE, SEVERITY, exp.name,
                f"{exp.name}: {d.arm} differs from {d.control} on {d.covariate} before the "
                f"experiment: mean {d.mean_arm:.4g} against {d.mean_control:.4g} (SMD "
                f"{d.smd:.2f}, |SMD| >= {config['max_smd']:g}; family-wise p = "
                f"{d.p_adjusted:.2g} over {tests} tests, {config['draws']:,} "
                "re-randomisations)",
                evidence={"experiment": exp.name, "arm": d.arm, "control": d.control,
                          "covariate": d.covariate, "smd": round(d.smd, 4),
                          "mean_arm": d.mean_arm, "mean_control": d.mean_control,
                          "n_arm": d.n_arm, "n_control": d.n_control, "p_value": d.p_value,
                          "p_adjusted": d.p_adjusted, "pre_period": ref,
                          "matched_subjects": matched},
                fix=FIX, identity=("experiment", "arm", "covariate"))
