"""/api/v1/verify and /api/v1/chain/head: the tamper-evident decision log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ...ledger import heads
from ...registry import parallel_verify
from ..auth import READ, require
from ._common import store_of

router = APIRouter(tags=["chain"])


@router.get("/verify", dependencies=[Depends(require(*READ))])
def verify(request: Request, full: bool = False) -> dict:
    """Recompute the chain blocks after the newest checkpoint the server's key vouches for
    (``modelward verify``; every block with ``?full=true`` or without a key): ok, counts,
    the checkpoint it started from, the first broken block and every problem. Always 200;
    read ``ok``. Stores no checkpoint (a read). A full verification also fetches and
    recomputes the Parquet files of archived blocks (``modelward archive``)."""
    store = store_of(request)
    keys = heads.keys_from(store.settings)
    with store.read() as conn:
        return parallel_verify.verify(conn, keys=keys, full=full).to_dict()


@router.get("/chain/head", dependencies=[Depends(require(*READ))])
def chain_head(request: Request) -> dict:
    """The chain head to keep outside the database (``modelward chain head``); signed with
    the server's Ed25519 signing_key_file, or HMAC-SHA256 when its signing key variable is
    set."""
    store = store_of(request)
    keys = heads.keys_from(store.settings)
    with store.read() as conn:
        return heads.head(conn, keys)
