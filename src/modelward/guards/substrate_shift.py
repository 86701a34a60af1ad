"""An experiment's exposures ran on more than one substrate regime.

What it checks
--------------
For every experiment with exposures in the check window, the exposures are split by
regime: model digest, embedder digest, observed embedder fingerprint epoch (recorded on
the exposure, else looked up in the fingerprints by embedder digest and time) and
vendor-reported model id. A dimension that differs by arm by design (the arms are two
models) counts by generation within each arm, so only a change under an arm makes a new
regime. It fires when more than one regime holds at least ``min_exposures`` exposures
(default 1), naming what changed and when, the exposures per regime, and the
treatment-by-regime interaction test (Cochran's Q over per-regime effects, Welch's F) when
a metric was recorded: below ``alpha`` (default 0.05) it says the effect differs by regime,
else that it is consistent. ``modelward experiment regimes NAME`` prints the metric per arm per
regime.

How it decides: that the experiment spans regimes is a fact, not a test. Whether the
treatment's effect differs between them is: the subject is the unit, because one user's
exposures are correlated (the same habits, the same account). Within each regime and arm a
subject's metric is averaged over their exposures; a regime's effect is the difference of
the arms' means of those subject means, with a Welch standard error over subjects and its
Welch-Satterthwaite degrees of freedom. Cochran's Q compares the effects across regimes,
and is referred to Welch's heterogeneity test rather than to chi-square: F = Q / (R - 1) /
(1 + 2(R - 2) L / (R² - 1)) on R - 1 and (R² - 1) / (3 L) degrees of freedom, where
L = sum over regimes of (1 - w / W)² / df (w a regime's weight 1 / se², W their sum, df its
degrees of freedom). Chi-square treats the weights as known; they are estimated from a few
tens of subjects, which makes Q liberal, most of all with few subjects per arm, and Welch's
correction accounts for it. Nominal level: with no interaction, the claim "differs by
regime" is made in at most ``alpha`` of experiments per treatment arm. Counting exposures as
independent, it was made in 40% of such experiments (10 exposures per subject, intra-class
correlation 0.5). ``bench/calibration.py`` measures the level on null experiments (nested
and crossed subjects, unequal exposure counts, clicks, three regimes, about 4 subjects per
arm) and the power at planted interactions of 0.3 and 0.5 SD; ``tests/calibration`` fails
when a seeded subset exceeds it.

Measured (95% Clopper-Pearson; target: upper bound at most 1.5x ``alpha``):

| null scenario | alpha | alarms / experiments | rate [95% interval] |
|---|---|---|---|
| 2 regimes, nested, 10 exposures, ICC 0.5, 200 subjects per regime | 0.05 | 249 / 5,000 | 4.98% [4.39, 5.62] |
| the same | 0.001 | 164 / 150,000 | 0.109% [0.093, 0.127] |
| the same, from exposure rows (``regimes.split``) | 0.05 | 69 / 1,500 | 4.6% [3.6, 5.8] |
| 3 regimes, 1 + geometric exposures (mean 10), ICC 0.3 | 0.05 | 245 / 5,000 | 4.9% [4.3, 5.5] |
| the same | 0.001 | 125 / 150,000 | 0.083% [0.069, 0.099] |
| the same, from exposure rows | 0.05 | 75 / 1,500 | 5.0% [4.0, 6.2] |
| 3 regimes, ~4 subjects per arm | 0.05 | 208 / 5,000 | 4.2% [3.6, 4.8] |
| clicks (0/1), 20 exposures | 0.05 | 155 / 3,000 | 5.2% [4.4, 6.0] |
| subjects crossed over both regimes | 0.05 | 0 / 3,000 | 0% [0, 0.12] (conservative, see below) |
| independent exposures (ICC 0), 40 subjects per regime | 0.05 | 100 / 2,000 | 5.0% [4.1, 6.0] |

At ``alpha`` 0.001 the level shows only over many experiments: a test exactly at 0.1% needs
about 40,000 before its upper bound can fall under 0.15%, and Welch's F runs slightly
liberal that far in the tail with nested subjects (0.109% above; 0.116% pooled over 140,000
experiments of four seeds), so those scenarios run 150,000 (about 3 minutes each).

Known limits: Welch's F is an approximation for subject means near normal; with a handful
of subjects per arm and a very skewed metric it can still drift from ``alpha`` (a regime
needs at least two subjects with a metric in both arms to be tested at all). A subject
exposed in several regimes contributes to each; the regimes' effects are then positively
correlated and the test is conservative (it loses power). Several treatment arms are each
tested at ``alpha``. The test asks whether the effect differs, not which regime is right:
read the per-regime effects in ``modelward experiment regimes NAME``.

Why it matters
--------------
A hosted embedding model changed its vectors in the middle of a retrieval A/B test. The
treatment's gain came from the week after the change, when retrieval quality moved for
both arms in different ways; the pooled result described neither substrate. An
experiment that spans regimes measures the treatment *and* the substrate change, mixed in
proportions nobody chose.

Example
-------
``rag-rerank`` ran 14 days; the vendor's embedder changed fingerprint on day 6::

    MW404 substrate-shift  rag-rerank
      rag-rerank spans 2 substrate regimes (fingerprint_epoch changed): R1 4,210 exposures
      from 2026-03-01T00:00:00Z, R2 5,790 from 2026-03-06T09:12:00Z; treatment effect
      differs by regime (Cochran's Q 41.3, p = 1.3e-10)

How to fix
----------
Analyse each regime on its own (``modelward experiment regimes NAME``) and report the
effect per regime; if the effect differs by regime, the pooled result is not a result.
Pin substrate for the duration of an experiment (a dated vendor model id, a registered
embedder digest), fingerprint hosted embedders (MW501) so changes are seen when they
happen, and restart the experiment after an unavoidable change.

Configuration
-------------
In ``[check.MW404]``::

    [check.MW404]
    min_exposures = 1      # a regime counts from this many exposures
    alpha = 0.05           # say the effect differs by regime below this p-value
    experiments = ["rag-rerank"]   # default: every experiment exposed in the window

``min_exposures``, ``alpha`` and ``experiments`` as above; ``severity`` overrides the default severity
(warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..rollout import checks
from ..rollout.regimes import differing, regime_report
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW404"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("min_exposures", "int", 1, "A regime counts from this many exposures.", minimum=1),
    Setting("alpha", "float", 0.05,
            "Say a treatment's effect differs by regime below this interaction p-value."),
    Setting("experiments", "list", None,
            "Experiments to judge; default: every one exposed in the window."),
)
FIX = ("analyse each regime on its own (`modelward experiment regimes NAME`), pin the "
       "substrate for the experiment's duration, and restart it after a change")


def check(view, config) -> Iterator[Finding]:
    until = view.now + 1
    for exp in checks.judged(view, config["experiments"], since=view.since, until=until,
                             option="check.MW404.experiments"):
        report = regime_report(view, exp, since=view.since, until=until)
        counted = [r for r in report.regimes if r.exposures >= config["min_exposures"]]
        if len(counted) < 2:
            continue
        spans = ", ".join(f"{r.label} {r.exposures:,} exposures from {iso(r.first_at)}"
                          for r in counted)
        tests = [i for i in report.interactions if i.p_value is not None]
        differs = {i.arm for i in differing(report, config["alpha"])}
        interaction = "".join(
            f"; {i.arm} effect differs by regime (Cochran's Q {i.q:.3g}, p = {i.p_value:.2g})"
            if i.arm in differs else
            f"; {i.arm} effect consistent across regimes (Cochran's Q {i.q:.3g}, "
            f"p = {i.p_value:.2g})" for i in tests)
        yield Finding(
            CODE, SEVERITY, exp.name,
            f"{exp.name} spans {len(counted)} substrate regimes ({', '.join(report.varying)} "
            f"changed): {spans}{interaction}",
            evidence={"experiment": exp.name, "varying": report.varying,
                      "regimes": [{"label": r.label, "substrate": r.key,
                                   "exposures": r.exposures, "first_at": iso(r.first_at),
                                   "last_at": iso(r.last_at)} for r in counted],
                      "interactions": [{"arm": i.arm, "q": i.q, "dof": i.dof, "f": i.f,
                                        "dof2": i.dof2, "p_value": i.p_value, "i2": i.i2}
                                       for i in tests]},
            fix=FIX, identity=("experiment", "varying"))
