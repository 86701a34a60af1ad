"""Protected aliases: who may move an alias by hand.

An alias that points somewhere and has reviewers of record (``modelward alias owners ALIAS
--reviewer EMAIL``) is *protected*: it moves only through an approved promotion (:func:`modelward.registry.promotion.approve`,
an alias event of kind ``promote``), or through a *break-glass* move by an admin with a
reason, recorded as an alias event of kind ``break-glass`` that MW206 reports. A plain move
(``modelward alias set``, ``PUT /api/v1/aliases/ALIAS``) of a protected alias is refused
with the promotion command to use instead. Creating an alias (its first target, or its
first after a deletion) is not a move of something that serves and stays open; the
deletion itself is a move MW206 reports. Every hand move names a person (an e-mail).

The CLI and the API both call :func:`move_alias`, so they cannot disagree.
"""

from __future__ import annotations

from ..errors import ForbiddenError, ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import people as ledger_people
from ..ledger.aliases import AliasEvent
from ..ledger.engine import Store

BREAK_GLASS = "break-glass"  # the kind of the alias event a break-glass move records


def reviewers_of(conn, alias: str) -> list[str]:
    """The reviewers of record of ``alias``, sorted."""
    return sorted(ledger_people.roles(conn, alias).reviewers)


def protected_by(conn, alias: str) -> list[str]:
    """The reviewers guarding ``alias`` now: its reviewers of record when it points
    somewhere (empty when it is unprotected)."""
    last = ledger_aliases.latest_event(conn, alias)
    if last is None or last.kind == ledger_aliases.DELETE:
        return []
    return reviewers_of(conn, alias)


def move_alias(store: Store, alias: str, digest: str, *, actor: str | None,
               reason: str | None = None, at: int | None = None, break_glass: bool = False,
               admin: bool = False, token_id: str | None = None,
               promote_hint: str | None = None) -> tuple[AliasEvent, bool]:
    """Move ``alias`` to ``digest`` by hand, in ``actor``'s name (an e-mail; required).

    A protected alias is refused (:class:`ForbiddenError`) unless ``break_glass`` with a
    ``reason`` by an ``admin``; the move is then recorded as kind ``break-glass`` with the
    reviewers it went around. ``promote_hint`` is the promotion command to name in the
    refusal (the CLI's by default)."""
    ledger_aliases.check_alias(alias)
    if not actor:
        raise ValidationError("no identity to record the move under", field="actor",
                              hint="give --actor you@example.com, or set MODELWARD_ACTOR")
    actor = ledger_people.check_email(actor, "actor")
    reason = (reason or "").strip() or None
    if break_glass and reason is None:
        raise ValidationError("a break-glass move needs a reason", field="reason",
                              hint="--break-glass --reason 'why the promotion gates are "
                                   "skipped'")
    if break_glass and not admin:
        raise ForbiddenError(f"only an admin may break the glass on {alias}",
                             hint="ask an admin, or promote it through a reviewer")
    with store.write() as conn:
        reviewers = protected_by(conn, alias)
        if reviewers and not break_glass:
            raise ForbiddenError(
                f"{alias} is protected (reviewers of record: {', '.join(reviewers)}): it "
                "moves only through an approved promotion",
                hint=(promote_hint or f"`modelward promote request {alias} {digest} --reason "
                      "TEXT`, then a reviewer runs `modelward promote approve REQUEST_ID`")
                + f"; in an emergency an admin may `modelward alias set {alias} {digest} "
                "--break-glass --reason TEXT` (recorded, reported by MW206)")
        if reviewers:  # break-glass on a protected alias: recorded as such
            return ledger_aliases.set_alias(
                conn, alias, digest, reason=reason, actor=actor, at=at, kind=BREAK_GLASS,
                evidence={"break_glass": True, "reviewers": reviewers}, token_id=token_id,
                max_future=store.settings.clock_skew)
        return ledger_aliases.set_alias(conn, alias, digest, reason=reason, actor=actor,
                                        at=at, token_id=token_id,
                                        max_future=store.settings.clock_skew)
