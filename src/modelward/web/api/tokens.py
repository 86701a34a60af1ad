"""/api/v1/tokens: API token management (admin only), as ``modelward token``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ...ledger import tokens as ledger_tokens
from ..auth import ADMIN, require
from ._common import JSON, Text, store_of

router = APIRouter(tags=["tokens"])


class TokenAsk(BaseModel):
    role: Literal["reader", "writer", "approver", "admin"]
    name: Text = Field("token", max_length=200, description="What the token is for.")
    email: Text | None = Field(None, description="Who holds it: required for writer, approver "
                               "and admin tokens (the actor of everything they write).")


@router.get("/tokens", dependencies=[Depends(require(*ADMIN))])
def list_tokens(request: Request) -> list[dict]:
    """Every token (never a secret)."""
    with store_of(request).read() as conn:
        return JSON([t.to_dict() for t in ledger_tokens.list_tokens(conn)])


@router.post("/tokens", dependencies=[Depends(require(*ADMIN))])
def create_token(body: TokenAsk, request: Request) -> dict:
    """Create a token; its secret is in the response once and stored only as a hash."""
    with store_of(request).write() as conn:
        tok, secret = ledger_tokens.create(conn, role=body.role, name=body.name,
                                           email=body.email)
    return JSON({"token": secret, **tok.to_dict()})


@router.delete("/tokens/{token_id}", dependencies=[Depends(require(*ADMIN))])
def revoke_token(token_id: str, request: Request) -> dict:
    """Revoke a live token by id."""
    with store_of(request).write() as conn:
        ledger_tokens.revoke(conn, token_id)
    return JSON({"revoked": token_id})
