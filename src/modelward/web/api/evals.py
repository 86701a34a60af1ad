"""/api/v1/evals: eval runs, listed and shown; showing one with ``as`` (or a token with an
e-mail) records the open, which a promotion's approver must have made."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

from ...ledger import evals as ledger_evals
from ...ledger import people, promotions
from ..auth import READ, require
from ._common import JSON, acting_as, store_of

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
    as_: str | None = Query(None, alias="as", description="Your e-mail: records that you "
                            "opened this run (default: the token's e-mail, if any)."),
) -> dict:
    """A run: what it scored (digests and aliases), its summary and, with ``items``, every
    item. The open is recorded (via ``api``) for ``as`` or the token's e-mail."""
    token = request.state.token
    email = acting_as(request, as_, "as") if (as_ or token.email) else None
    if email:
        email = people.check_email(email, "as")
    store = store_of(request)
    with (store.write() if email else store.read()) as conn:
        run = ledger_evals.get_run(conn, run_id)
        results = ledger_evals.results(conn, run_id) if items else None
        if email:
            promotions.record_open(conn, run_id, email, via="api")
    data = run.to_dict()
    if results is not None:
        data["items"] = [r.to_dict() for r in results]
    data["opened_by"] = email
    return JSON(data)
