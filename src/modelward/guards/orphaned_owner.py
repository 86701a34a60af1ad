"""Live aliases and artifacts owned by someone who left, and aliases nobody can review.

What it checks
--------------
Owners of record are judged against the roster (``modelward people sync FILE.csv``). For
every alias that points at something now (a live alias) and every artifact a live alias
points at (a live artifact), it fires when

* an owner of record of the alias (``modelward alias owners ALIAS --owner EMAIL``) is not
  active in the roster (``owner-inactive``);
* the ``owner`` of the live artifact, as registered (``modelward register … --owner``), is
  not active in the roster (``artifact-owner-inactive``);
* the alias has no active reviewer of record (``no-reviewer``), so no promotion of it can
  pass the gates.

"Not active" means marked ``left``, or absent from the roster when there is one. With no
roster at all, only aliases that have owners or reviewers of record are judged, and only
for having no reviewer: the guard stays quiet for teams that do not use people. One
finding per (alias or artifact, person, problem); an artifact finding names the aliases
that serve it.

Why it matters
--------------
The registry had gates, but the owners had left: the model serving customers belonged to
nobody, its approvals went to an empty inbox, and the first person to look at it was the
one answering the incident. Ownership that is checked against who is still on the team is
the difference between an owner of record and a name in a field.

Example
-------
``chat/v1``'s owner left in the last roster sync, and its only reviewer with them::

    MW201 orphaned-owner  chat/v1
      chat/v1 is owned by dana@example.com, who has left the team
    MW201 orphaned-owner  chat/v1
      chat/v1 has no active reviewer of record (dana@example.com has left the team); no
      promotion of it can pass the gates
    MW201 orphaned-owner  sha256:9f86d081884c…
      model chat@v4 (sha256:9f86d081884c…), serving chat/v1, is owned by
      dana@example.com, who has left the team

How to fix
----------
Hand the alias over: ``modelward alias owners chat/v1 --owner EMAIL --reviewer EMAIL…``
with people who are active in the roster (``modelward people list``). If the roster is
wrong, fix the CSV and ``modelward people sync`` it again. An artifact's registered owner
is part of its record; re-assign ownership through the alias.

Configuration
-------------
``require_reviewer`` in ``[check.MW201]``: report live aliases with no active reviewer of
record (default ``true``; with a roster every live alias needs one). ``severity``
overrides the default severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ledger import people as ledger_people
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW201"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("require_reviewer", "bool", True,
                   "Report live aliases with no active reviewer of record."),)

_WHY = {"left": "has left the team", "unknown": "is not in the roster"}
FIX_OWNER = "hand it over: `modelward alias owners ALIAS --owner EMAIL` with an active person"
FIX_REVIEWER = "name active reviewers: `modelward alias owners ALIAS --reviewer EMAIL…`"


def check(view, config) -> Iterator[Finding]:
    team = ledger_people.roster(view)
    roles = ledger_people.all_roles(view)
    live = view.alias_targets()

    def inactive(email: str) -> str | None:
        state = ledger_people.standing(team, email)
        return None if state == "active" or not team else _WHY[state]

    for alias in sorted(live):
        held = roles.get(alias) or ledger_people.Roles(alias)
        for email in sorted(held.owners):
            why = inactive(email)
            if why:
                yield Finding(CODE, SEVERITY, alias, f"{alias} is owned by {email}, who {why}",
                              evidence={"alias": alias, "email": email,
                                        "problem": "owner-inactive",
                                        "standing": ledger_people.standing(team, email)},
                              fix=FIX_OWNER, identity=("alias", "email", "problem"))
        if not config["require_reviewer"] or not (team or held):
            continue
        active = [e for e in sorted(held.reviewers) if not inactive(e)]
        if active:
            continue
        gone = [f"{e} {inactive(e)}" for e in sorted(held.reviewers)]
        yield Finding(CODE, SEVERITY, alias,
                      f"{alias} has no active reviewer of record"
                      + (f" ({'; '.join(gone)})" if gone else "")
                      + "; no promotion of it can pass the gates",
                      evidence={"alias": alias, "email": None, "problem": "no-reviewer",
                                "reviewers": sorted(held.reviewers),
                                "owners": sorted(held.owners)},
                      fix=FIX_REVIEWER, identity=("alias", "problem"))
    if not team:
        return
    serving = view.live_aliases()
    arts = view.artifacts(serving)
    for digest in sorted(arts):
        owner = arts[digest].owner
        email = owner.strip().lower() if owner else None
        why = inactive(email) if email else None
        if why:
            art = arts[digest]
            yield Finding(CODE, SEVERITY, digest,
                          f"{art.kind} {view.label(digest)}, serving "
                          f"{', '.join(serving[digest])}, is owned by {email}, who {why}",
                          evidence={"digest": digest, "email": email,
                                    "problem": "artifact-owner-inactive",
                                    "aliases": serving[digest],
                                    "standing": ledger_people.standing(team, email)},
                          fix=FIX_OWNER, identity=("digest", "email", "problem"))
