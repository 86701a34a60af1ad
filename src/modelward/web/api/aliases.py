"""/api/v1/aliases: list, set, resolve (at a time), history, owners and reviewers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ...ledger import aliases as ledger_aliases
from ...ledger import people as ledger_people
from ...registry import protection
from ..auth import ADMIN, READ, WRITE, require
from ._common import JSON, Text, acting_as, query_time, store_of, token_of

router = APIRouter(tags=["aliases"])


class AliasSet(BaseModel):
    digest: Text = Field(..., description="sha256: digest of a registered artifact")
    reason: Text | None = None
    actor: Text | None = Field(None, description="Who moves it: always the token's e-mail; "
                              "naming anybody else is refused (403).")
    break_glass: bool = Field(False, description="Move a protected alias (one with reviewers "
                              "of record) without a promotion: admin tokens only, needs a "
                              "reason; recorded and reported by MW206.")


class AliasRoles(BaseModel):
    owners: list[Text] | None = Field(None, description="E-mails; replaces the owners "
                                     "(omit to keep them).")
    reviewers: list[Text] | None = Field(None, description="E-mails; replaces the reviewers "
                                        "(omit to keep them).")


@router.get("/aliases", dependencies=[Depends(require(*READ))])
def list_aliases(request: Request) -> list[dict]:
    """Every alias with the digest it points at now and since when."""
    with store_of(request).read() as conn:
        return JSON([{"alias": e.alias, "digest": e.digest, "since": e.to_dict()["at"]}
                     for e in ledger_aliases.list_aliases(conn)])


@router.get("/aliases/{alias:path}/history", dependencies=[Depends(require(*READ))])
def alias_history(alias: str, request: Request) -> list[dict]:
    """Every move of an alias, oldest first."""
    with store_of(request).read() as conn:
        return JSON([e.to_dict() for e in ledger_aliases.history(conn, alias)])


@router.get("/aliases/{alias:path}/owners", dependencies=[Depends(require(*READ))])
def alias_owners(alias: str, request: Request) -> dict:
    """The alias's owners and reviewers of record, with each one's standing in the roster."""
    with store_of(request).read() as conn:
        return JSON(ledger_people.roles(conn, alias).to_dict(ledger_people.roster(conn)))


@router.put("/aliases/{alias:path}/owners", dependencies=[Depends(require(*ADMIN))])
def set_alias_owners(alias: str, body: AliasRoles, request: Request) -> dict:
    """Replace the owners and/or reviewers of record (a role omitted is kept). Admin only:
    the reviewers of record decide who may approve promotions."""
    with store_of(request).write() as conn:
        held = ledger_people.set_roles(conn, alias, owners=body.owners,
                                       reviewers=body.reviewers)
        return JSON(held.to_dict(ledger_people.roster(conn)))


@router.put("/aliases/{alias:path}", dependencies=[Depends(require(*WRITE))])
def set_alias(alias: str, body: AliasSet, request: Request) -> dict:
    """Point an alias at a registered digest (an append-only event; a no-op when it already
    points there: ``moved`` is false), in the token holder's name. A protected alias (one
    with reviewers of record) is refused (403) naming the promotion to file instead, unless
    an admin token sends ``break_glass`` with a ``reason``."""
    token = token_of(request)
    actor = acting_as(request, body.actor, "actor")
    event, moved = protection.move_alias(
        store_of(request), alias, body.digest, actor=actor, reason=body.reason,
        break_glass=body.break_glass, admin=token.role == "admin", token_id=token.id,
        promote_hint=f"POST /api/v1/promotions {{\"alias\": \"{alias}\", \"digest\": "
                     f"\"{body.digest}\"}} (`modelward promote request {alias} "
                     f"{body.digest}`), then a reviewer approves it")
    return JSON({"moved": moved, "event": event.to_dict()})


@router.get("/aliases/{alias:path}", dependencies=[Depends(require(*READ))])
def resolve_alias(alias: str, request: Request, at: Text | None = None) -> dict:
    """What the alias points at now, or pointed at at ``at`` (ISO 8601)."""
    when = query_time(at, "at")
    with store_of(request).read() as conn:
        return JSON(ledger_aliases.resolve_at(conn, alias, when).to_dict())
