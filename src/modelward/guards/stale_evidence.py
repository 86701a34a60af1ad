"""The eval behind a live model or prompt is too old, on a deprecated eval set, or
scored another digest.

What it checks
--------------
For every alias that points at a model, adapter or prompt now, the evidence behind its
current digest is chosen exactly as ``modelward promote approve`` chooses it by default:
the latest completed task eval run that scored exactly this digest (as model or prompt),
preferring one on an eval set that is not deprecated. It fires when

* no completed task run scored this digest, although evals ran through the alias (runs
  whose model or prompt alias is this alias) (``other-digest``): the latest of them scored
  something else, typically the digest the alias pointed at before;
* the evidence finished longer ago than ``evidence_max_age`` (``fresh``);
* the evidence is on an eval set deprecated with ``modelward evalset deprecate``
  (``evalset``).

An alias no eval ever touched (no completed task run on its digest, and none run through
the alias name) is left to MW301, which reports production use of unscored digests. One
finding per alias; the fresh and deprecated checks are the promotion gates' own
(``modelward.registry.promotion.evidence_failures``).

Why it matters
--------------
The registry showed a green eval next to every model. One was eight months old, one ran
on a benchmark the team had retired for leaking into training data, and one had scored the
checkpoint before the current one. Evidence that is stale, deprecated or about another
digest is not evidence for what serves.

Example
-------
``chat/v1`` moved to chat@v4 after its last eval, which scored chat@v3::

    MW202 stale-evidence  chat/v1
      chat/v1 points at model chat@v4 (sha256:60303ae22b99…) and no completed task eval
      run scored it; the latest eval behind chat/v1, run 0196c1d2-…, finished
      2026-03-01T10:00:00Z, scored model chat@v3 (sha256:9f86d081884c…)

How to fix
----------
Run the eval on what the alias points at now: ``modelward eval run --evalset EVALSET
--prompt PROMPT_ALIAS --model chat/v1 --runner …``, on an eval set that is not deprecated.
Keep it fresh with ``modelward eval watch``, and promote through ``modelward promote``, whose
gates refuse stale evidence.

Configuration
-------------
``max_age`` in ``[check.MW202]``: the oldest evidence accepted (a duration; default: the
``evidence_max_age`` setting, itself 30d by default). ``severity`` overrides the default
severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import duration
from ..ledger import evals as ledger_evals
from ..registry.promotion import evidence_failures, label, select_evidence
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW202"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("max_age", "duration", None,
                   "Oldest evidence accepted (default: the evidence_max_age setting).",
                   minimum=1),)

JUDGED_KINDS = ("model", "adapter", "prompt")
FIX = ("run the eval on what the alias points at now (`modelward eval run … --model ALIAS`) "
       "on an eval set that is not deprecated")


def check(view, config) -> Iterator[Finding]:
    max_age = config["max_age"] or view.settings.evidence_max_age
    current = view.alias_targets()
    arts = view.artifacts(current.values())
    for alias in sorted(current):
        digest = current[alias]
        art = arts.get(digest)
        if art is None or art.kind not in JUDGED_KINDS:
            continue
        evidence = {"alias": alias, "digest": digest, "max_age": duration(max_age)}
        run = select_evidence(view, digest, view.now)
        if run is None:
            # the latest completed task run that went through the alias (prompt or model)
            other = ledger_evals.latest_run_through(view, alias, until=view.now)
            if other is None:
                continue  # no eval behind it at all: MW301's business
            scored = " and ".join(label(view, d) for d in (other.prompt_digest,
                                                            other.model_digest) if d)
            yield Finding(CODE, SEVERITY, alias,
                          f"{alias} points at {label(view, digest)} and no completed task eval "
                          f"run scored it; the latest eval behind {alias}, run {other.id}, "
                          f"finished {iso(other.finished_at)}, scored {scored}",
                          evidence={**evidence, "problem": "other-digest", "run": other.id,
                                    "scored": [d for d in (other.prompt_digest,
                                                           other.model_digest) if d]},
                          fix=FIX, identity=("alias", "digest"))
            continue
        failures = evidence_failures(view, run, digest, at=view.now, max_age=max_age)
        if not failures:
            continue
        yield Finding(CODE, SEVERITY, alias,
                      f"{alias} points at {label(view, digest)}: "
                      + "; ".join(f.message for f in failures),
                      evidence={**evidence, "problem": [f.gate for f in failures][0],
                                "problems": [f.to_dict() for f in failures], "run": run.id,
                                "finished_at": iso(run.finished_at),
                                "evalset": run.evalset_digest},
                      fix=FIX, identity=("alias", "digest"))
