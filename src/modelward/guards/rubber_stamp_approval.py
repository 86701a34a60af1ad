"""Promotions approved by a non-reviewer, without opening the eval, implausibly fast, or
with an override.

What it checks
--------------
Every promotion that moved an alias: each granted review of ``modelward promote approve``
(``promotion_reviews``), and each alias event of kind ``promote`` that no granted review
records. It fires when the promotion was

* made with no approval on record (``no-review``): a ``promote`` event written around the
  gates;
* approved by someone who was not a reviewer of record, or not active in the roster, as
  the gates recorded at the time (``non-reviewer``), or by its own requester
  (``self-approval``);
* approved without the approver opening the evidence first (``not-opened``): no
  ``modelward eval show RUN --as EMAIL`` (or dashboard view) of the evidence run by the
  approver before the approval;
* approved implausibly fast (``fast``): sooner than ``min_review_time`` after the approver
  first opened the evidence, or after the request when nothing was opened;
* approved with ``--override`` (``override``), reported with its reason and the gates it
  skipped.

One finding per promotion, listing every problem. With ``--since`` (or ``check.window``)
only promotions at or after it are judged.

Why it matters
--------------
The registry had an approval step, and every promotion passed it: the approver clicked
within seconds of the request, never opened the eval, and sometimes was the person who
asked. An approval that nobody could have read is a signature, not a review; this guard
makes the difference visible after the fact, including the overrides people were allowed
to make.

Example
-------
``chat/v1`` was promoted to chat@v4 by its requester's teammate 40 seconds after the
request, without opening the eval::

    MW203 rubber-stamp-approval  chat/v1
      chat/v1 -> model chat@v4 (sha256:60303ae22b99…) approved by bob@example.com at
      2026-03-01T12:00:40Z (request 0196c1d2-…): approved without opening the evidence,
      eval run 0196c1a0-…; approved 40s after the request (min_review_time 5m); approved
      with an override of the gates opened: release train

How to fix
----------
Promote through ``modelward promote request`` and ``modelward promote approve --as
REVIEWER`` with reviewers of record (``modelward alias owners ALIAS --reviewer EMAIL``)
who open the evidence (``modelward eval show RUN --as EMAIL``) and take the time to read
it. Keep overrides for emergencies, and review each one this guard reports. A promotion
judged acceptable after the fact can be suppressed with a reason and an expiry.

Configuration
-------------
``min_review_time`` in ``[check.MW203]``: the shortest plausible review (a duration;
default: the ``min_review_time`` setting, itself 5m by default; ``0s`` turns the speed
check off). ``severity`` overrides the default severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import duration
from ..registry.promotion import approvals, label, rubber_stamp
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW203"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("min_review_time", "duration", None,
                   "Shortest plausible review (default: the min_review_time setting).",
                   minimum=0),)

FIX = ("promote with `modelward promote approve --as REVIEWER` after the reviewer of record "
       "has opened and read the evidence (`modelward eval show RUN --as EMAIL`)")


def check(view, config) -> Iterator[Finding]:
    least = config["min_review_time"]
    least = view.settings.min_review_time if least is None else least
    for a in approvals(view, view.alias_events(), since=view.since, until=view.now):
        problems = rubber_stamp(view, a, min_review_time=least)
        if not problems:
            continue
        request = a.request.id if a.request else None
        where = f"request {request}" if request else f"alias event {a.event_id}"
        yield Finding(
            CODE, SEVERITY, a.alias,
            f"{a.alias} -> {label(view, a.digest)} approved by {a.approver or 'nobody named'} "
            f"at {iso(a.at)} ({where}): " + "; ".join(p["message"] for p in problems),
            evidence={"alias": a.alias, "digest": a.digest, "approver": a.approver,
                      "at": iso(a.at), "request": request, "alias_event": a.event_id,
                      "review": a.review.id if a.review else None,
                      "evidence_run": a.review.evidence_run_id if a.review else None,
                      "override_reason": a.review.override_reason if a.review else None,
                      "min_review_time": duration(least),
                      "problems": [p["problem"] for p in problems]},
            fix=FIX, identity=("alias", "request", "alias_event"))
