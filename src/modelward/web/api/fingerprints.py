"""/api/v1/fingerprints: embedder fingerprint runs and the latest comparison, as
``modelward fingerprint history|compare``. (Running probes executes an embedder: that
stays a CLI command.)"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from ...errors import NotFoundError
from ...ledger import fingerprints as ledger_fp
from ...retrieval import fingerprinting
from ..auth import READ, require
from ._common import JSON, query_time, store_of

router = APIRouter(tags=["fingerprints"])


@router.get("/fingerprints", dependencies=[Depends(require(*READ))])
def list_fingerprints(
    request: Request,
    alias: str | None = Query(None, description="Only this embedder alias (its history, "
                              "oldest first)."),
    since: str | None = Query(None, description="ISO 8601, or a duration back from now (7d); runs at or after (all aliases)."),
) -> list[dict]:
    """Fingerprint runs: verdict, epoch, magnitude, noise floor, digest."""
    start = query_time(since, "since")
    with store_of(request).read() as conn:
        if alias is not None:
            runs = [r for r in ledger_fp.history(conn, alias) if start is None or r.at >= start]
        else:
            runs = ledger_fp.all_runs(conn, since=start)
    return JSON([r.to_dict() for r in runs])


@router.get("/fingerprints/compare", dependencies=[Depends(require(*READ))])
def compare_fingerprint(
    request: Request,
    alias: str = Query(..., description="The embedder alias."),
) -> dict:
    """The alias's latest run against the run it was compared with, recomputed from the
    stored vectors."""
    store = store_of(request)
    with store.read() as conn:
        if ledger_fp.latest(conn, alias) is None:  # a 404, where the domain says 400
            raise NotFoundError(f"{alias} has no fingerprint runs",
                                hint=f"run `modelward fingerprint run {alias} --runner …`")
    return JSON(fingerprinting.compare_latest(store, alias).to_dict())
