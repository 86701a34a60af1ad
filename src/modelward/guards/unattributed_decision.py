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
Counted in SQL (``GROUP BY``): a ledger of millions of decisions is read in two passes.

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

import sqlalchemy as sa

from ..ledger.decisions import DIGEST_FIELDS, KIND_FIELD
from ..ledger.schema import alias_events, artifacts, decisions
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding, plural, short

CODE = "MW101"
NAME = "unattributed-decision"
SEVERITY = "error"
STATUS = "active"
OPTIONS = (Setting("examples", "int", 3, "Example decision ids per finding.", minimum=0),)

FIX_ALIAS = ("record what the alias resolved to: ledger.record(uses=[ledger.resolve(alias)], …)")
FIX_DIGEST = ("register the artifact (`modelward register KIND PATH --name …`, or --hosted "
              "VENDOR:MODEL_ID); already recorded decisions become attributable")


def _alias_kinds():
    """alias -> the artifact kind it points at (the smallest, should it have changed)."""
    return (sa.select(alias_events.c.alias, sa.func.min(artifacts.c.kind).label("kind"))
            .join(artifacts, artifacts.c.digest == alias_events.c.digest)
            .group_by(alias_events.c.alias).subquery("alias_kind"))


def _missing_digest(kind_col):
    """Decisions whose alias's digest field is empty, given the alias's artifact kind."""
    d = decisions.c
    terms = [sa.and_(kind_col == kind, d[f].is_(None))
             for kind, f in KIND_FIELD.items() if f != "model_digest"]
    terms.append(sa.and_(sa.or_(kind_col.is_(None), kind_col.in_(("model", "adapter"))),
                         d.model_digest.is_(None)))
    # an alias of a dataset, evalset or policy has no field of its own: it needs at least one
    terms.append(sa.and_(kind_col.in_(("dataset", "evalset", "policy")),
                         *[d[f].is_(None) for f in DIGEST_FIELDS]))
    return sa.or_(*terms)


def _examples(view, where, partition, limit: int) -> dict[str, list[str]]:
    """The first ``limit`` decision ids per value of ``partition`` among rows ``where``."""
    if limit <= 0:
        return {}
    rn = sa.func.row_number().over(partition_by=partition,
                                   order_by=(decisions.c.at, decisions.c.id)).label("rn")
    inner = where(sa.select(partition.label("key"), decisions.c.id, rn)).subquery()
    rows = view.execute(sa.select(inner.c.key, inner.c.id).where(inner.c.rn <= limit)
                        .order_by(inner.c.key, inner.c.rn)).all()
    out: dict[str, list[str]] = {}
    for key, did in rows:
        out.setdefault(key, []).append(did)
    return out


def _aliases_without_digest(view, limit: int) -> Iterator[Finding]:
    kinds = _alias_kinds()
    d = decisions.c

    def where(q):
        return (q.select_from(decisions.outerjoin(kinds, kinds.c.alias == d.alias))
                .where(d.alias.is_not(None), view.in_window(d.at), _missing_digest(kinds.c.kind)))

    groups = view.execute(where(sa.select(d.alias, kinds.c.kind, sa.func.count(),
                                          sa.func.min(d.at), sa.func.max(d.at)))
                          .group_by(d.alias, kinds.c.kind)).all()
    if not groups:
        return
    examples = _examples(view, where, d.alias, limit)
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


def _digest_usage(view) -> dict[tuple[str, str], list]:
    """(field, digest) -> [decisions, first, last]: one GROUP BY pass over all digest
    fields at once (their combinations are few: models x prompts x embedders …)."""
    cols = [decisions.c[f] for f in DIGEST_FIELDS]
    usage: dict[tuple[str, str], list] = {}
    rows = view.execute(sa.select(*cols, sa.func.count(), sa.func.min(decisions.c.at),
                                  sa.func.max(decisions.c.at))
                        .where(view.in_window(decisions.c.at)).group_by(*cols))
    for row in rows:
        n, first, last = row[len(cols):]
        for field, digest in zip(DIGEST_FIELDS, row[:len(cols)], strict=True):
            if digest is None:
                continue
            u = usage.get((field, digest))
            if u is None:
                usage[(field, digest)] = [n, first, last]
            else:
                u[0], u[1], u[2] = u[0] + n, min(u[1], first), max(u[2], last)
    return usage


def _unknown_digests(view, limit: int) -> Iterator[Finding]:
    usage = _digest_usage(view)
    known = view.artifacts(d for _f, d in usage)
    unknown = sorted(k for k in usage if k[1] not in known)
    for field in DIGEST_FIELDS:
        mine = [k for k in unknown if k[0] == field]
        if not mine:
            continue
        col = decisions.c[field]

        def where(q, col=col):
            return (q.select_from(decisions.outerjoin(artifacts, artifacts.c.digest == col))
                    .where(col.is_not(None), artifacts.c.digest.is_(None),
                           view.in_window(decisions.c.at)))

        examples = _examples(view, where, col, limit)
        for _field, digest in mine:
            n, first, last = usage[(field, digest)]
            yield Finding(
                CODE, SEVERITY, digest,
                f"{field} {short(digest)} is not a registered artifact but is named by "
                f"{plural(n, 'decision')} (first {iso(first)}, last {iso(last)})",
                evidence={"kind": "unknown-digest", "field": field, "digest": digest,
                          "decisions": n, "first_seen": iso(first), "last_seen": iso(last),
                          "examples": examples.get(digest, [])},
                fix=FIX_DIGEST, identity=("kind", "field", "digest"))


def check(view, config) -> Iterator[Finding]:
    yield from _aliases_without_digest(view, config["examples"])
    yield from _unknown_digests(view, config["examples"])
