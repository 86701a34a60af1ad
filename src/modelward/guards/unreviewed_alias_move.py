"""Protected aliases moved around their promotion, and aliases moved by people not on the team.

What it checks
--------------
Every alias event (a move, a rollback, a deletion, a promotion, a break-glass move). An
alias that points somewhere is *protected* from the moment it has a reviewer of record
(``modelward alias owners ALIAS --reviewer EMAIL``): from then on it should move only
through an approved promotion (``modelward promote request`` / ``approve``). Creating an
alias (its first target, or its first after a deletion) is not a move; the deletion is.
The guard fires when

* a protected alias moved by hand, not through a promotion (``not-promoted``): a move
  written straight into the ledger, by an older modelward, or by a tool that mirrors
  another registry;
* a protected alias moved by a recorded break-glass (``break-glass``:
  ``modelward alias set ALIAS DIGEST --break-glass --reason TEXT`` or the API's
  ``break_glass``), reported with its reason so that every emergency is looked at;
* when there is a roster (``modelward people sync FILE.csv``), any alias was moved by
  someone not in it (``actor-not-in-roster``), by someone who had left the team by then
  (``actor-left``: marked ``left`` before the move), or by nobody named (``no-actor``).

A promotion's own move (kind ``promote``) is judged by MW203. One finding per alias event,
listing every problem. With ``--since`` (or ``check.window``) only events at or after it are
judged. Reviewers of record are kept as the current list with the time each was assigned:
a move is judged against the reviewers assigned at or before it who are still of record.

Why it matters
--------------
The registry had promotion gates, but any writer could still point the production alias at
a new digest with a plain ``alias set``: the gates guarded the front door while the side
door stood open, and nobody noticed until the audit. A gate that can be walked around is
only a gate if every walk around it is seen.

Example
-------
``chat/v1`` has reviewers of record, and was moved by hand during an incident::

    MW206 unreviewed-alias-move  chat/v1
      chat/v1 -> model chat@v4 (sha256:60303ae22b99…) at 2026-03-01T12:00:00Z by
      ops@example.com (alias event 7): break-glass move around its reviewers of record
      bob@example.com, carol@example.com: rollback during incident 42; ops@example.com is
      not in the roster

How to fix
----------
Move protected aliases with ``modelward promote request ALIAS DIGEST`` and have a reviewer
of record approve it. Review each break-glass move this guard reports, then suppress its
finding with a reason and an expiry. Keep the roster current (``modelward people sync``) and
set aliases under your own identity (``--actor``, ``MODELWARD_ACTOR`` or git's
``user.email``).

Configuration
-------------
``roster`` in ``[check.MW206]``: also report moves by people not active in the roster
(default ``true``; with no roster there is nothing to check). ``severity`` overrides the
default severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ledger import people as ledger_people
from ..registry.promotion import label
from ..registry.protection import BREAK_GLASS
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW206"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("roster", "bool", True,
                   "Also report alias moves by people not active in the roster."),)

FIX = ("move protected aliases through `modelward promote request ALIAS DIGEST` and a "
       "reviewer's approval; review each break-glass move, then suppress it with a reason")
_STANDING = {"left": ("actor-left", "has left the team"),
             "unknown": ("actor-not-in-roster", "is not in the roster")}


def _problems(event, reviewers: list[str], team: dict, use_roster: bool) -> list[tuple[str, str]]:
    out = []
    if reviewers and event.kind not in ("promote", "create"):
        around = f"around its reviewers of record {', '.join(reviewers)}"
        if event.kind == BREAK_GLASS:
            out.append(("break-glass", f"break-glass move {around}"
                        + (f": {event.reason}" if event.reason else "")))
        else:
            out.append(("not-promoted", f"{event.kind} of a protected alias without a "
                        f"promotion ({around})"))
    if use_roster and team:
        if not event.actor:
            out.append(("no-actor", "nobody is named as its actor"))
        else:
            email = event.actor.strip().lower()
            state = ledger_people.standing(team, email)
            if state == "left" and team[email].updated_at > event.at:
                state = "active"  # they left after the move: on the team when they made it
            if state != "active":
                problem, why = _STANDING[state]
                out.append((problem, f"{event.actor} {why}"))
    return out


def check(view, config) -> Iterator[Finding]:
    team = ledger_people.roster(view)
    roles = ledger_people.all_roles(view)
    for event in view.alias_events():
        if (view.since is not None and event.at < view.since) or event.at > view.now:
            continue
        held = roles.get(event.alias)
        reviewers = sorted(e for e, at in (held.reviewers if held else {}).items()
                           if at <= event.at)
        problems = _problems(event, reviewers, team, config["roster"])
        if not problems:
            continue
        yield Finding(
            CODE, SEVERITY, event.alias,
            f"{event.alias} -> {label(view, event.digest)} at {iso(event.at)} by "
            f"{event.actor or 'nobody named'} (alias event {event.id}): "
            + "; ".join(message for _p, message in problems),
            evidence={"alias": event.alias, "digest": event.digest, "kind": event.kind,
                      "actor": event.actor, "at": iso(event.at), "alias_event": event.id,
                      "token_id": event.token_id, "reason": event.reason,
                      "reviewers": reviewers,
                      "problems": [p for p, _m in problems]},
            fix=FIX, identity=("alias", "alias_event"))
