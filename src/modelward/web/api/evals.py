"""/api/v1/evals: eval runs, listed and shown. Showing one records nothing; the open a
promotion's approver must have made is recorded only by ``POST /evals/{run_id}/open``, in
the token holder's name."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

from ...ledger import evals as ledger_evals
from ...ledger import promotions
from ...timefmt import iso
from ..auth import READ, require
from ._common import JSON, acting_as, store_of, token_of

router = APIRouter(tags=["evals"])


@router.get("/evals", dependencies=[Depends(require(*READ))])
def list_eval_runs(
    request: Request,
    kind: Literal["task", "safety"] | None = None,
    status: Literal["running", "completed", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    """Eval runs, newest first."""
    with store_of(request).read() as conn:
        runs = ledger_evals.list_runs(conn, kind=kind, status=status, limit=limit)
    return JSON([r.to_dict() for r in runs])


@router.get("/evals/{run_id}", dependencies=[Depends(require(*READ))])
def show_eval_run(
    run_id: str, request: Request,
    items: bool = Query(False, description="Include every item's result."),
) -> dict:
    """A run: what it scored (digests and aliases), its summary and, with ``items``, every
    item. Reading records nothing: record an open with ``POST /evals/{run_id}/open``."""
    with store_of(request).read() as conn:
        run = ledger_evals.get_run(conn, run_id)
        results = ledger_evals.results(conn, run_id) if items else None
    data = run.to_dict()
    if results is not None:
        data["items"] = [r.to_dict() for r in results]
    return JSON(data)


@router.post("/evals/{run_id}/open", dependencies=[Depends(require(*READ))])
def open_eval_run(run_id: str, request: Request) -> dict:
    """Record that the token holder opened this run's evidence (what a promotion's
    approver must have done), with the token's id; the token must carry an e-mail. The
    body is ignored: nobody records an open in another person's name."""
    email = acting_as(request, None, "as")
    with store_of(request).write() as conn:
        ledger_evals.get_run(conn, run_id)
        at = promotions.record_open(conn, run_id, email, via="api",
                                    token_id=token_of(request).id)
    return JSON({"run_id": run_id, "opened_by": email, "at": iso(at),
                 "token_id": token_of(request).id})
