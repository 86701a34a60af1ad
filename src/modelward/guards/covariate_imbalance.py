"""An experiment's arms differed on pre-period covariates before the treatment did anything.

What it checks
--------------
For every experiment with exposures in the check window and a pre-period population — the
file named by ``pre_period`` in ``[check.MW402]``, else the one recorded when the
experiment was created with ``--balance-on`` — the exposed subjects are joined with the
population by subject, and each numeric covariate is compared between every treatment arm
and control: standardized mean difference (difference of means over the root mean of the
two variances) and Welch's t-test. It fires for each covariate with |SMD| >= ``max_smd``
(default 0.1) whose Bonferroni-adjusted p-value (over every covariate x arm tested) is
below ``alpha`` (default 0.05): an imbalance large enough to matter and not the chance
wobble of a small sample. ``modelward experiment check NAME`` prints the full table.

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
      mean 41.2 against 13.9 (SMD 0.93 >= 0.1, Welch p = 4.1e-80, Bonferroni over 2 tests)

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
    experiments = ["checkout-v2"]       # default: every experiment exposed in the window

``pre_period`` (a CSV or JSONL path relative to modelward.toml, or the digest of a stored
dataset), ``subject_column``, ``covariates``, ``max_smd``, ``alpha`` and ``experiments``
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
    Setting("alpha", "float", 0.05, "… when the Bonferroni-adjusted p-value is below this."),
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
                                            alpha=config["alpha"])
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
                f"{d.smd:.2f}, |SMD| >= {config['max_smd']:g}; Welch p = {d.p_value:.2g}, "
                f"Bonferroni over {tests} tests: {d.p_adjusted:.2g})",
                evidence={"experiment": exp.name, "arm": d.arm, "control": d.control,
                          "covariate": d.covariate, "smd": round(d.smd, 4),
                          "mean_arm": d.mean_arm, "mean_control": d.mean_control,
                          "n_arm": d.n_arm, "n_control": d.n_control, "p_value": d.p_value,
                          "p_adjusted": d.p_adjusted, "pre_period": ref,
                          "matched_subjects": matched},
                fix=FIX, identity=("experiment", "arm", "covariate"))
