"""A hosted model changed underneath its digest: the vendor started reporting another model.

What it checks
--------------
For every hosted model (an artifact whose payload is held by a vendor, registered with
``--hosted``), the decisions naming it are put in time order and the vendor-reported
model id (``vendor_model_id``) of each is compared with the one before. A change with no
registry event in between fires. A registry event is an alias event to or from that
digest, or the registration of that digest, of an artifact naming it as a parent, or of
the hosted model ``VENDOR:NEW_ID``. With ``fingerprint = true`` the vendor's fingerprint
(``vendor_fingerprint``, e.g. OpenAI's ``system_fingerprint``) is compared the same way
between decisions reporting the same model id.
Decisions that report no id are skipped. One finding per (model, old value, new value),
with when it first changed, the decisions on each side and how often it flipped.
Change points are found in SQL (``LAG`` over the decisions of each hosted model).

Why it matters
--------------
``openai:gpt-4o`` is a floating name: the vendor moves it to a new snapshot when it
likes. Mid-experiment, arm B's lift was the vendor's new model, not the team's prompt.
The digest in the ledger did not change, so nothing else would notice.

Example
-------
Decisions on ``openai:gpt-4o`` report ``gpt-4o-2024-08-06`` until 14:02 and
``gpt-4o-2024-11-20`` from 14:03, and nobody registered or moved anything::

    MW104 vendor-substitution  openai:gpt-4o
      openai:gpt-4o (sha256:3f0a…) reported vendor_model_id gpt-4o-2024-08-06, then
      gpt-4o-2024-11-20 from 2026-03-01T14:03:00Z with no registry event in between

How to fix
----------
Pin the dated snapshot: register ``--hosted openai:gpt-4o-2024-11-20``, point the alias
at it (``modelward alias set``), and record decisions through the alias. Registering the
new snapshot or moving the alias is the registry event that acknowledges a change;
results that straddle the change (experiments, evals) must be split at it.

Configuration
-------------
``fingerprint`` in ``[check.MW104]``: also compare ``vendor_fingerprint`` (default
``false``; some vendors change it with every deployment). ``severity`` overrides the
default severity (warning), as for every guard.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import sqlalchemy as sa

from ..ledger.schema import alias_events, artifact_parents, artifacts, decisions
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding, short

CODE = "MW104"
NAME = "vendor-substitution"
SEVERITY = "warning"
STATUS = "active"
OPTIONS = (Setting("fingerprint", "bool", False,
                   "Also compare vendor_fingerprint between consecutive decisions."),)

FIX = ("pin the dated snapshot: register it with --hosted, move the alias to it, and split "
       "results that straddle the change")


def _changes(view, column):
    """Rows (digest, id, at, value, prev_id, prev_at, prev_value) where ``column`` changed
    between consecutive decisions of a hosted model. For the fingerprint, only changes
    under the same reported model id count (a new id is the model-id pass's finding)."""
    d = decisions.c
    w = dict(partition_by=d.model_digest, order_by=(d.at, d.id))
    inner = (
        sa.select(d.model_digest.label("digest"), d.id, d.at, column.label("value"),
                  sa.func.coalesce(d.vendor_model_id, "").label("vid"),
                  sa.func.lag(d.id).over(**w).label("prev_id"),
                  sa.func.lag(d.at).over(**w).label("prev_at"),
                  sa.func.lag(column).over(**w).label("prev_value"),
                  sa.func.lag(sa.func.coalesce(d.vendor_model_id, "")).over(**w)
                  .label("prev_vid"))
        .select_from(decisions.join(artifacts, sa.and_(artifacts.c.digest == d.model_digest,
                                                       artifacts.c.payload == "vendor")))
        .where(column.is_not(None), view.in_window(d.at))
    ).subquery()
    changed = [inner.c.prev_value.is_not(None), inner.c.value != inner.c.prev_value]
    if column is not decisions.c.vendor_model_id:
        changed.append(inner.c.vid == inner.c.prev_vid)
    return view.execute(sa.select(inner).where(*changed)
                        .order_by(inner.c.digest, inner.c.at, inner.c.id)).all()


def _event_times(view, digest: str, hosted_id: str, new_value: str | None) -> list[int]:
    """Times of the registry events that acknowledge a change of ``digest``."""
    times = list(view.execute(sa.select(alias_events.c.at).where(sa.or_(
        alias_events.c.digest == digest, alias_events.c.previous_digest == digest))).scalars())
    reg = [artifacts.c.digest == digest,
           artifacts.c.digest.in_(sa.select(artifact_parents.c.child)
                                  .where(artifact_parents.c.parent == digest))]
    if new_value is not None:
        vendor = hosted_id.partition(":")[0]
        reg.append(artifacts.c.hosted_id == f"{vendor}:{new_value}")
    times += view.execute(sa.select(artifacts.c.created_at).where(sa.or_(*reg))).scalars()
    return sorted(times)


def _findings(view, field: str, rows) -> Iterator[Finding]:
    groups: dict[tuple, list] = {}
    cache: dict[tuple, list[int]] = {}
    hosted = view.artifacts({r.digest for r in rows})
    for r in rows:
        art = hosted[r.digest]
        key = (r.digest, r.value if field == "vendor_model_id" else None)
        if key not in cache:
            cache[key] = _event_times(view, r.digest, art.hosted_id, key[1])
        times = cache[key]
        i = bisect.bisect_right(times, r.prev_at)  # an event in (prev_at, at] acknowledges
        if i < len(times) and times[i] <= r.at:
            continue
        groups.setdefault((r.digest, r.prev_value, r.value), []).append(r)
    if not groups:
        return
    col = decisions.c[field]
    counts = {(dg, v): n for dg, v, n in view.execute(
        sa.select(decisions.c.model_digest, col, sa.func.count())
        .where(decisions.c.model_digest.in_({k[0] for k in groups}),
               view.in_window(decisions.c.at))
        .group_by(decisions.c.model_digest, col)).all()}
    for (digest, old, new), changes in groups.items():
        art, first = hosted[digest], changes[0]
        yield Finding(
            CODE, SEVERITY, art.hosted_id,
            f"{art.hosted_id} ({short(digest)}) reported {field} "
            f"{old}, then {new} from {iso(first.at)} with no registry event in between"
            + (f" ({len(changes)} unacknowledged changes)" if len(changes) > 1 else ""),
            evidence={"digest": digest, "hosted_id": art.hosted_id, "field": field,
                      "old": old, "new": new, "changed_at": iso(first.at),
                      "last_before": {"id": first.prev_id, "at": iso(first.prev_at)},
                      "first_after": {"id": first.id, "at": iso(first.at)},
                      "changes": len(changes), "decisions_old": counts.get((digest, old), 0),
                      "decisions_new": counts.get((digest, new), 0)},
            fix=FIX, identity=("digest", "field", "old", "new"))


def check(view, config) -> Iterator[Finding]:
    yield from _findings(view, "vendor_model_id", _changes(view, decisions.c.vendor_model_id))
    if config["fingerprint"]:
        yield from _findings(view, "vendor_fingerprint",
                             _changes(view, decisions.c.vendor_fingerprint))
