"""/api/v1/verify and /api/v1/chain/head: the tamper-evident decision log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ...ledger import chain as ledger_chain
from ...ledger import heads
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
    the server's Ed25519 signing_key_file, or HMAC-SHA256 when its signing key variable is
    set."""
    store = store_of(request)
    keys = heads.keys_from(store.settings)
    with store.read() as conn:
        return heads.head(conn, keys)
