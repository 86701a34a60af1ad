"""Decisions that cannot be traced to a registered artifact.

What it checks
--------------
Two ways a decision fails to say what produced it:

* it names the alias it asked for (``chat/v1``) but not the digest that alias resolved to,
  in the digest field of the alias's artifact kind (``model_digest`` for a model or
  adapter alias, ``prompt_digest`` for a prompt alias, …; an alias the registry has never
  seen is expected to come with a ``model_digest``);
* one of its digest fields (model, prompt, embedder, reranker, config) names a digest that
  is not registered as an artifact.

One finding per alias without a digest, and one per (field, unknown digest), each with the
number of decisions, when they were first and last seen, and a few example decision ids.
Counted in SQL (``GROUP BY``) from the per-block rollups (``check_rollups``): a ledger of
millions of decisions is read as thousands of rollup rows.

Why it matters
--------------
"Which model produced this answer eight months ago?" The alias says ``v1``, which has
rotated four times since; a digest nobody registered cannot be looked up, retained,
replayed or evaluated. Either way the audit trail ends at the decision.

Example
-------
A service records ``alias="chat/v1"`` by hand instead of passing the resolution::

    ledger.record(alias="chat/v1", subject=user, output_text=answer)   # no digest

``modelward check`` reports::

    MW101 unattributed-decision  chat/v1
      alias chat/v1 is named without a model_digest by 1,204 decisions (first …, last …)

How to fix
----------
Record what the alias resolved to, which fills the right field::

    model = ledger.resolve("chat/v1")
    ledger.record(uses=[model], subject=user, output_text=answer)

For an unknown digest, register the artifact it names (``modelward register model
PATH --name …`` or ``--hosted VENDOR:MODEL_ID``); decisions already recorded become
attributable as soon as the artifact is registered.

Configuration
-------------
``examples`` in ``[check.MW101]``: how many example decision ids each finding carries
(default 3). Decisions outside ``--since`` / ``check.window`` are not counted.
``severity`` overrides the default severity (error), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import plural, short_digest
from ..ledger import usage as ledger_usage
from ..ledger.decisions import DIGEST_FIELDS, KIND_FIELD
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW101"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("examples", "int", 3, "Example decision ids per finding.", minimum=0),)

FIX_ALIAS = ("record what the alias resolved to: ledger.record(uses=[ledger.resolve(alias)], …)")
FIX_DIGEST = ("register the artifact (`modelward register KIND PATH --name …`, or --hosted "
              "VENDOR:MODEL_ID); already recorded decisions become attributable")


def _aliases_without_digest(view, limit: int) -> Iterator[Finding]:
    groups, examples = ledger_usage.aliases_without_digest(view, since=view.since,
                                                           examples=limit, rollups=view.rollups)
    for alias, kind, n, first, last in groups:
        field = KIND_FIELD.get(kind, "model_digest" if kind is None else "any digest field")
        known = "" if kind else " (the registry has no such alias)"
        yield Finding(
            CODE, SEVERITY, alias,
            f"alias {alias}{known} is named without a {field} by {plural(n, 'decision')} "
            f"(first {iso(first)}, last {iso(last)})",
            evidence={"kind": "alias-without-digest", "alias": alias, "field": field,
                      "alias_known": kind is not None, "decisions": n,
                      "first_seen": iso(first), "last_seen": iso(last),
                      "examples": examples.get(alias, [])},
            fix=FIX_ALIAS, identity=("kind", "alias", "field"))


def _unknown_digests(view, limit: int) -> Iterator[Finding]:
    usage = ledger_usage.digest_usage(view, since=view.since, rollups=view.rollups)
    known = view.artifacts(d for _f, d in usage)
    unknown = sorted(k for k in usage if k[1] not in known)
    for field in DIGEST_FIELDS:
        mine = [k for k in unknown if k[0] == field]
        if not mine:
            continue
        examples = ledger_usage.unregistered_examples(
            view, field, since=view.since, examples=limit,
            digests=[d for _f, d in mine] if view.rollups else None)
        for _field, digest in mine:
            n, first, last = usage[(field, digest)]
            yield Finding(
                CODE, SEVERITY, digest,
                f"{field} {short_digest(digest)} is not a registered artifact but is named by "
                f"{plural(n, 'decision')} (first {iso(first)}, last {iso(last)})",
                evidence={"kind": "unknown-digest", "field": field, "digest": digest,
                          "decisions": n, "first_seen": iso(first), "last_seen": iso(last),
                          "examples": examples.get(digest, [])},
                fix=FIX_DIGEST, identity=("kind", "field", "digest"))


def check(view, config) -> Iterator[Finding]:
    yield from _aliases_without_digest(view, config["examples"])
    yield from _unknown_digests(view, config["examples"])
