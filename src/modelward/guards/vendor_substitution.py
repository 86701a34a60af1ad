"""A hosted model changed underneath its digest: the vendor started reporting another model.

What it checks
--------------
Two things, for every hosted model or embedder (an artifact whose payload is held by a
vendor, registered with ``--hosted``; a decision's ``vendor_model_id`` belongs to its
model, or to its embedder when it names no model, as an embeddings call does):

* served as another model: decisions naming a hosted artifact report a model id that is
  not that artifact's (``openai:gpt-4o-2024-08-06`` served as ``gpt-4o-2024-11-20``). A
  floating name resolved to a dated snapshot (``gpt-4o`` served as ``gpt-4o-2024-08-06``)
  is not one; ids listed in the artifact's ``served_as`` metadata are accepted. One
  finding per (artifact, served id), with the number of decisions and when.
* changed underneath: the decisions naming the artifact are put in time order and the
  vendor-reported model id of each is compared with the one before. A change with no
  registry event in between fires. A registry event is an alias event to or from that
digest, or the registration of that digest, of an artifact naming it as a parent, or of
the hosted model ``VENDOR:NEW_ID``. With ``fingerprint = true`` the vendor's fingerprint
(``vendor_fingerprint``, e.g. OpenAI's ``system_fingerprint``) is compared the same way
between decisions reporting the same model id.
Decisions that report no id are skipped. One finding per (model, old value, new value),
with when it first changed, the decisions on each side and how often it flipped.
Change points are found in SQL (``LAG`` over the decisions of each hosted model). With
``check_rollups`` (the default) the per-block rollups first name the hosted models that
reported more than one id (or fingerprint: each rollup row keeps the smallest and largest)
in the window, and the blocks where it can change (a block reporting two values, or
another value than the block before it); only those blocks' decisions, and the block
before each, are put in order. Blocks of one model that overlap in time (several writers)
are all put in order; the findings are the same either way.

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

A pinned snapshot served as another (the served-as finding)::

    MW104 vendor-substitution  openai:gpt-4o-2024-08-06
      openai:gpt-4o-2024-08-06 (sha256:9c1d…) is pinned, but 212 decisions report the
      vendor served gpt-4o-2024-11-20 (first …, last …)

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

from ..display import plural, short_digest
from ..ledger import registry_events as ledger_registry_events
from ..ledger import usage as ledger_usage
from ..registry.hosted import served_mismatch
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW104"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("fingerprint", "bool", False,
                   "Also compare vendor_fingerprint between consecutive decisions."),)

FIX = ("pin the dated snapshot: register it with --hosted, move the alias to it, and split "
       "results that straddle the change")
FIX_SERVED = ("the vendor did not serve the model the decisions name: call the pinned "
              "snapshot by its exact id (or register what was served with `modelward "
              "register --hosted VENDOR:SERVED_ID` and point the alias at it); if the vendor "
              "reports this id for the same model, list it in the artifact's served_as "
              "metadata")


def _served_other(view) -> Iterator[Finding]:
    """Decisions whose reported model id is not the pinned hosted artifact they name."""
    for subject in ledger_usage.VENDOR_SUBJECTS:
        rows = ledger_usage.served_ids(view, since=view.since, subject=subject,
                                       rollups=view.rollups)
        hosted = view.artifacts({r.digest for r in rows})
        for digest, served, n, first, last, example in rows:
            art = hosted.get(digest)
            if not served_mismatch(art, served):
                continue
            yield Finding(
                CODE, SEVERITY, art.hosted_id,
                f"{art.hosted_id} ({short_digest(digest)}) is recorded, but "
                f"{plural(n, 'decision')} report the vendor served {served} "
                f"(first {iso(first)}, last {iso(last)})",
                evidence={"kind": "served-other", "digest": digest,
                          "hosted_id": art.hosted_id, "artifact_kind": art.kind,
                          "served": served, "decisions": n, "first_seen": iso(first),
                          "last_seen": iso(last), "example": example},
                fix=FIX_SERVED, identity=("kind", "digest", "served"))


def _changes(view, field: str, subject: str = "model_digest"):
    """Rows where ``field`` changed between consecutive decisions of a hosted artifact."""
    return ledger_usage.vendor_changes(view, field, since=view.since, subject=subject,
                                       rollups=view.rollups)


def _event_times(view, digest: str, hosted_id: str, new_value: str | None) -> list[int]:
    """Times of the registry events that acknowledge a change of ``digest``."""
    successor = None
    if new_value is not None:
        successor = f"{hosted_id.partition(':')[0]}:{new_value}"
    return ledger_registry_events.event_times(view, digest, successor_hosted_id=successor)


def _findings(view, field: str, rows, subject: str = "model_digest") -> Iterator[Finding]:
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
    counts = ledger_usage.vendor_value_counts(view, field, {k[0] for k in groups},
                                              since=view.since, subject=subject,
                                              rollups=view.rollups)
    for (digest, old, new), changes in groups.items():
        art, first = hosted[digest], changes[0]
        yield Finding(
            CODE, SEVERITY, art.hosted_id,
            f"{art.hosted_id} ({short_digest(digest)}) reported {field} "
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
    yield from _served_other(view)
    for subject in ledger_usage.VENDOR_SUBJECTS:
        yield from _findings(view, "vendor_model_id",
                             _changes(view, "vendor_model_id", subject), subject)
        if config["fingerprint"]:
            yield from _findings(view, "vendor_fingerprint",
                                 _changes(view, "vendor_fingerprint", subject), subject)
