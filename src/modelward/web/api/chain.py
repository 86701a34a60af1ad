"""/api/v1/verify and /api/v1/chain/head: the tamper-evident decision log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ...ledger import chain as ledger_chain
from ..auth import READ, require
from ._common import store_of

router = APIRouter(tags=["chain"])


@router.get("/verify", dependencies=[Depends(require(*READ))])
def verify(request: Request) -> dict:
    """Recompute every chain block (``modelward verify``): ok, counts, the first broken
    block and every problem. Always 200; read ``ok``."""
    with store_of(request).read() as conn:
        return ledger_chain.verify(conn).to_dict()


@router.get("/chain/head", dependencies=[Depends(require(*READ))])
def chain_head(request: Request) -> dict:
    """The chain head to keep outside the database (``modelward chain head``); signed with
    HMAC-SHA256 when the server's signing key variable is set."""
    store = store_of(request)
    with store.read() as conn:
        return ledger_chain.head(conn, key_env=store.settings.signing_key_env)
