"""Production ran a prompt and model combination that no eval run ever scored.

What it checks
--------------
For the decisions inside the check window (30 days by default), every distinct
(prompt digest, model digest) pair production used, counted in SQL (``GROUP BY``), is
looked up among the completed task eval runs (``modelward eval run``, kind ``task``). A
pair no completed run scored is reported once, with when production first used it, how
many decisions used it, the first decision's id, and what the latest completed eval run
of that prompt's alias (an alias that ever pointed at the prompt digest) and of that
model (its aliases, or the digest itself) scored instead.

A decision that names a prompt but no model counts as scored when any completed run
scored that prompt. Decisions with no prompt digest are not judged, and neither is a
prompt digest that is not a registered artifact (MW101 reports those). A run that failed
or is still running scores nothing; the finding says so when such runs of the pair (or
of the prompt, for decisions without a model) exist, with the failed run's error, so
"the only eval failed" is not mistaken for "nobody ran an eval". The verdict is ``modelward.evals.coverage``'s, which
the dashboard's coverage page draws.

Why it matters
--------------
The eval worker loaded the prompt template at start-up and kept scoring v37 for eight
hours while production ran v38. Every dashboard said the prompt was evaluated; the
prompt that answered customers had no eval at all. The digest an eval run rendered and
the digest production used are both in the ledger: this guard compares them.

Example
-------
``prompt/support@production`` moved from support@37 to support@38 at 15:00; the last eval
scored v37::

    MW301 unscored-prompt  prompt/support@production
      production used prompt support@38 (sha256:60303ae22b99…) with model chat@v3
      (sha256:9f86d081884c…) in 212 decisions since 2026-03-01T15:00:07Z (last
      2026-03-02T11:50:07Z), and no completed eval run scored that pair; the latest eval
      of prompt/support@production (run 01a2…, finished 2026-03-01T14:10:00Z) scored
      support@37 (sha256:f2ca1bb6c7e9…) with chat@v3 (sha256:9f86d081884c…)

How to fix
----------
Run the eval on what production runs: ``modelward eval run --evalset … --prompt
prompt/support@production --model chat/v1 --runner …`` resolves the aliases when it
starts and records the digests it rendered and called. To keep it that way, run
``modelward eval watch`` (it re-runs whenever an alias moves), or gate alias moves on an
eval of the new digest. A pair that is scored by design elsewhere can be suppressed with
a reason and an expiry.

Configuration
-------------
``window`` in ``[check.MW301]``: how far back decisions are judged (a duration; default
``30d``). ``--since`` or ``check.window``, when later, narrows it further.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import plural, short_digest
from ..evals.coverage import coverage
from ..ledger import aliases as ledger_aliases
from ..ledger import evals as ledger_evals
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW301"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("window", "duration", "30d",
                   "How far back production decisions are judged.", minimum=1),)

FIX = ("run `modelward eval run` (or keep `modelward eval watch` running) on the prompt and "
       "model aliases production resolves, so a run scores the digests it uses")


def _latest(view, by: str, values) -> dict[str, dict]:
    """The latest completed task run per value of column ``by`` (an alias or digest)."""
    return {key: {"run": row.id, "finished_at": iso(row.finished_at),
                  "_at": row.finished_at,
                  "prompt_alias": row.prompt_alias, "prompt_digest": row.prompt_digest,
                  "model_alias": row.model_alias, "model_digest": row.model_digest}
            for key, row in ledger_evals.latest_task_runs(view, by, values).items()}


def _newest(candidates: list[dict | None]) -> dict | None:
    found = [c for c in candidates if c]
    return max(found, key=lambda c: (c["_at"], c["run"])) if found else None


def _public(run: dict | None) -> dict | None:
    return {k: v for k, v in run.items() if k != "_at"} if run else None


def _scored_text(view, what: str, run: dict) -> str:
    model = view.label(run["model_digest"]) if run["model_digest"] else "no model"
    return (f"the latest eval of {what} (run {run['run']}, finished {run['finished_at']}) "
            f"scored {view.label(run['prompt_digest'])} with {model}")


def check(view, config) -> Iterator[Finding]:
    window = view.now - config["window"]
    start = max(window, view.since) if view.since is not None else window
    unscored = coverage(view, since=start, rollups=view.rollups).unscored  # the coverage page's own verdict
    if not unscored:
        return
    aliases_of = ledger_aliases.names_of(view)  # latest naming first
    wanted = {dig for p in unscored for dig in (p.prompt, p.model) if dig}
    names = [a for dig in wanted for a in aliases_of.get(dig, [])]
    by_prompt_alias = _latest(view, "prompt_alias", names)
    by_model_alias = _latest(view, "model_alias", names)
    by_model = _latest(view, "model_digest", [p.model for p in unscored])
    unfinished: dict[tuple, list] = {}
    for row in ledger_evals.unfinished_task_runs(view, [p.prompt for p in unscored]):
        unfinished.setdefault((row.prompt_digest, row.model_digest), []).append(row)
    for pair in sorted(unscored, key=lambda p: (p.first, p.prompt, p.model or "")):
        prompt, model, n, first, last = pair.prompt, pair.model, pair.decisions, pair.first, \
            pair.last
        prompt_aliases = aliases_of.get(prompt, [])
        model_aliases = aliases_of.get(model, []) if model else []
        prompt_eval = _newest([by_prompt_alias.get(a) for a in prompt_aliases])
        model_eval = _newest([by_model_alias.get(a) for a in model_aliases]
                             + [by_model.get(model)])
        subject = prompt_aliases[0] if prompt_aliases else prompt
        model_text = f"model {view.label(model)}" if model else "no model digest"
        message = (f"production used prompt {view.label(prompt)} with {model_text} in "
                   f"{plural(n, 'decision')} since {iso(first)} (last {iso(last)}), and no "
                   "completed eval run scored that " + ("pair" if model else "prompt"))
        told = []
        if prompt_eval:
            told.append(_scored_text(view, prompt_eval["prompt_alias"], prompt_eval))
        if model_eval and (prompt_eval is None or model_eval["run"] != prompt_eval["run"]):
            what = model_eval["model_alias"] if model_eval["model_alias"] in model_aliases \
                else f"model {short_digest(model)}"
            told.append(_scored_text(view, what, model_eval))
        tried = (unfinished.get((prompt, model), []) if model else
                 [r for (p, _m), rows in unfinished.items() if p == prompt for r in rows])
        tried.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        if tried:
            what = "pair" if model else "prompt"
            states = sorted({r.status for r in tried})
            if len(tried) == 1:
                r = tried[0]
                told.insert(0, f"the only eval run of that {what} (run {r.id}, started "
                               f"{iso(r.started_at)}) " + ("failed" if r.status == "failed"
                                                         else f"is {r.status}")
                            + (f": {r.error}" if r.error else ""))
            else:
                told.insert(0, f"{len(tried)} eval runs of that {what} did not complete "
                               f"({', '.join(states)}; the latest, run {tried[0].id}, "
                               f"started {iso(tried[0].started_at)})")
        if told:
            message += "; " + "; ".join(told)
        elif prompt_aliases:
            message += f"; no eval run has scored {', '.join(prompt_aliases)} at all"
        else:
            message += "; no alias names this prompt and no eval run scored it"
        yield Finding(
            CODE, SEVERITY, subject, message,
            evidence={"prompt_digest": prompt, "model_digest": model, "decisions": n,
                      "first_seen": iso(first), "last_seen": iso(last),
                      "first_decision": pair.first_decision,
                      "prompt_aliases": prompt_aliases, "model_aliases": model_aliases,
                      "latest_prompt_eval": _public(prompt_eval),
                      "latest_model_eval": _public(model_eval),
                      "unfinished_runs": [{"run": r.id, "status": r.status,
                                           "started_at": iso(r.started_at)} for r in tried],
                      "window_start": iso(start)},
            fix=FIX, identity=("prompt_digest", "model_digest"))
