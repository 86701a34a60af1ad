"""/api/v1/aliases: set, resolve (at a time), history."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ...ledger import aliases as ledger_aliases
from ...timefmt import parse_time
from ..auth import READ, WRITE, require

router = APIRouter(tags=["aliases"])


class AliasSet(BaseModel):
    digest: str = Field(..., description="sha256: digest of a registered artifact")
    reason: str | None = None
    actor: str | None = None


@router.get("/aliases", dependencies=[Depends(require(*READ))])
def list_aliases(request: Request) -> list[dict]:
    with request.app.state.store.read() as conn:
        return [{"alias": e.alias, "digest": e.digest, "since": e.to_dict()["at"]}
                for e in ledger_aliases.list_aliases(conn)]


@router.put("/aliases/{alias:path}", dependencies=[Depends(require(*WRITE))])
def set_alias(alias: str, body: AliasSet, request: Request) -> dict:
    with request.app.state.store.write() as conn:
        event, moved = ledger_aliases.set_alias(conn, alias, body.digest, reason=body.reason,
                                                actor=body.actor)
    return {"moved": moved, "event": event.to_dict()}


@router.get("/aliases/{alias:path}/history", dependencies=[Depends(require(*READ))])
def alias_history(alias: str, request: Request) -> list[dict]:
    with request.app.state.store.read() as conn:
        return [e.to_dict() for e in ledger_aliases.history(conn, alias)]


@router.get("/aliases/{alias:path}", dependencies=[Depends(require(*READ))])
def resolve_alias(alias: str, request: Request, at: str | None = None) -> dict:
    when = parse_time(at, field="at") if at is not None else None
    with request.app.state.store.read() as conn:
        return ledger_aliases.resolve_at(conn, alias, when).to_dict()
