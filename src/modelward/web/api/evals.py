"""/api/v1/evals: eval runs, listed and shown; ``POST …/opens`` records that somebody opened
one, which a promotion's approver must have done (a GET changes nothing)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ...ledger import evals as ledger_evals
from ...ledger import people, promotions
from ..auth import READ, require
from ._common import JSON, Text, acting_as, store_of

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
    item. Reading it records nothing: ``POST /api/v1/evals/{run_id}/opens`` records an open."""
    with store_of(request).read() as conn:
        run = ledger_evals.get_run(conn, run_id)
        results = ledger_evals.results(conn, run_id) if items else None
    return JSON(_shown(run, results, None))


class OpenAsk(BaseModel):
    as_: Text | None = Field(None, alias="as", description="Your e-mail (default: the "
                             "token's; a token with an e-mail cannot name another).")


@router.post("/evals/{run_id}/opens", dependencies=[Depends(require(*READ))])
def open_eval_run(
    run_id: str, request: Request, body: OpenAsk | None = None,
    items: bool = Query(False, description="Include every item's result."),
) -> dict:
    """Record that you opened this run (via ``api``), which a promotion's approver must have
    done, and return the run as ``GET`` does, with ``opened_by``."""
    email = people.check_email(acting_as(request, body.as_ if body else None, "as"), "as")
    with store_of(request).write() as conn:
        run = ledger_evals.get_run(conn, run_id)
        results = ledger_evals.results(conn, run_id) if items else None
        promotions.record_open(conn, run_id, email, via="api")
    return JSON(_shown(run, results, email))


def _shown(run, results, email: str | None) -> dict:
    data = run.to_dict()
    if results is not None:
        data["items"] = [r.to_dict() for r in results]
    data["opened_by"] = email
    return data
