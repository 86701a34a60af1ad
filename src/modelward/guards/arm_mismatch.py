"""Exposures record an arm the experiment's salt does not give their subject.

What it checks
--------------
For every experiment with exposures in the check window, each exposure's recorded arm is
compared with the arm the experiment's salt and allocation give its subject — the one
assignment function (``modelward.rollout.assignment``) that the SDK's ``assign()`` and
``expose()`` use. It fires once per experiment when at least one exposure disagrees,
with the number of exposures and distinct subjects that disagree, the first and last
such exposure, which recorded arm stood where the salt gave which, and up to
``examples`` subject ids.

How it decides: exact comparison, no statistics. The salt and the arms are written once
at creation and never change, so the arm a subject should have is known with certainty;
there is no false-alarm rate to control. An exposure naming an arm the experiment does
not have counts as a disagreement too (MW401 also reports it).

Known limits: it judges the arm recorded, not the arm served: code that records the salt's
arm but serves another is invisible here. An experiment whose arms were deliberately made
elsewhere (a feature flag's own bucketing, recorded for ``modelward experiment audit``)
fires by design: leave it out with ``experiments`` or a suppression, and let MW402 and
MW403 judge that assignment.

Why it matters
--------------
Every check on an experiment — sample ratio, covariate balance, independence from other
experiments — and every lift computed from it assumes the arms came from the salt. When
the recorded arm is not the salt's, something else chose who got which arm: a feature
flag's own ``user_id % 100``, a sticky cookie from an earlier run, a hand-made override
list, a client on a stale salt. The comparison is then between populations chosen by that
other mechanism, and the randomisation the analysis relies on never happened.

Example
-------
The refund-flow canary (the demo) was bucketed by the serving code as ``user_id % 100 < 5``
and recorded as a modelward experiment; the salt gives other users the treatment::

    MW405 arm-mismatch  refund-flow-canary
      refund-flow-canary: 932 of 10,000 exposures (932 of 10,000 subjects) record an arm
      the salt does not give, 2026-11-22T00:29:00Z to 2026-12-05T23:26:59.400000Z
      (474 treatment where the salt gives control, 458 control where the salt gives
      treatment); e.g. u-1, u-2, u-3, u-4, u-13

How to fix
----------
Find what assigned the arms: record each exposure with the arm ``exp.assign(subject)``
returns (``expose()`` with no ``arm`` does it), and retire the other bucketing. If the
arms were made elsewhere on purpose, judge that assignment with ``modelward experiment
audit`` and leave the experiment out of this guard (``experiments``, or a suppression with
a reason). The disagreeing exposures cannot be repaired: re-run the experiment on the
salt's arms.

Configuration
-------------
In ``[check.MW405]``::

    [check.MW405]
    examples = 5                  # subject ids shown per experiment
    experiments = ["checkout-v2"] # default: every experiment exposed in the window

``examples`` and ``experiments`` as above; ``severity`` overrides the default severity
(warning), as for every guard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from ..ledger import experiments as ledger_experiments
from ..rollout import assignment, checks
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW405"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (
    Setting("examples", "int", 5, "Subject ids shown per experiment.", minimum=1),
    Setting("experiments", "list", None,
            "Experiments to judge; default: every one exposed in the window."),
)
FIX = ("record the arm the salt gives (expose() without arm=); if the arms were made "
       "elsewhere on purpose, judge them with `modelward experiment audit`")


def check(view, config) -> Iterator[Finding]:
    until = view.now + 1
    for exp in checks.judged(view, config["experiments"], since=view.since, until=until,
                             option="check.MW405.experiments"):
        rows = ledger_experiments.read_exposures(view, exp.name, since=view.since, until=until)
        if not rows:
            continue
        salted = assignment.assign_many(exp, [r.subject for r in rows])
        bad = [(r, str(a)) for r, a in zip(rows, salted, strict=True) if r.arm != a]
        if not bad:
            continue
        subjects = list(dict.fromkeys(r.subject for r, _ in bad))
        all_subjects = len({r.subject for r in rows})
        swaps = Counter((r.arm, a) for r, a in bad)
        pairs = [{"recorded": rec, "salt": salt, "exposures": n}
                 for (rec, salt), n in sorted(swaps.items(), key=lambda kv: (-kv[1], kv[0]))]
        first, last = bad[0][0].at, bad[-1][0].at  # read in time order
        examples = subjects[:config["examples"]]
        swap_text = ", ".join(f"{p['exposures']:,} {p['recorded']} where the salt gives "
                              f"{p['salt']}" for p in pairs)
        message = (f"{exp.name}: {len(bad):,} of {len(rows):,} exposures ({len(subjects):,} "
                   f"of {all_subjects:,} subjects) record an arm the salt does not give, "
                   f"{iso(first)} to {iso(last)} ({swap_text}); e.g. {', '.join(examples)}")
        yield Finding(CODE, SEVERITY, exp.name, message,
                      evidence={"experiment": exp.name, "exposures": len(rows),
                                "mismatched_exposures": len(bad),
                                "subjects": all_subjects, "mismatched_subjects": len(subjects),
                                "first": iso(first), "last": iso(last), "arms": pairs,
                                "examples": examples},
                      fix=FIX, identity=("experiment",))
