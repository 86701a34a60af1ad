"""/api/v1/promotions: request, list, show and approve promotions through their gates, as
``modelward promote``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ...ledger import promotions as ledger_promotions
from ...registry import promotion
from ..auth import APPROVE, READ, WRITE, require
from ._common import JSON, Text, acting_as, store_of, token_of

router = APIRouter(tags=["promotions"])


class PromotionAsk(BaseModel):
    alias: Text = Field(..., description="The alias to move, e.g. chat/v1.")
    digest: Text = Field(..., description="sha256: digest of the registered artifact.")
    requester: Text | None = Field(None, description="Requester's e-mail: always the "
                                  "token's; naming anybody else is refused (403).")
    evidence_run_id: Text | None = Field(None, description="The eval run backing it (default: "
                                        "the latest completed task run on the digest).")
    reason: Text | None = None


class Approval(BaseModel):
    approver: Text | None = Field(None, description="Approver's e-mail: always the "
                                 "token's; naming anybody else is refused (403).")
    override: bool = Field(False, description="Approve despite failed gates (recorded; "
                           "needs a reason).")
    reason: Text | None = None


@router.get("/promotions", dependencies=[Depends(require(*READ))])
def list_promotions(
    request: Request,
    status: Literal["pending", "approved", "overridden", "withdrawn"] | None = None,
    alias: Text | None = None,
) -> list[dict]:
    """Promotion requests, newest first."""
    with store_of(request).read() as conn:
        found = ledger_promotions.list_requests(conn, status=status, alias=alias)
    return JSON([r.to_dict() for r in found])


@router.post("/promotions", dependencies=[Depends(require(*WRITE))])
def request_promotion(body: PromotionAsk, request: Request) -> dict:
    """File a request to point an alias at a digest; a reviewer of record approves it."""
    requester = acting_as(request, body.requester, "requester")
    req = promotion.request(store_of(request), body.alias, body.digest, requester,
                            evidence_run_id=body.evidence_run_id, reason=body.reason,
                            token_id=token_of(request).id)
    return JSON(req.to_dict())


@router.get("/promotions/{request_id}", dependencies=[Depends(require(*READ))])
def show_promotion(
    request_id: str, request: Request,
    as_: Text | None = Query(None, alias="as", description="Also judge every gate for this "
                            "approver now (records nothing)."),
) -> dict:
    """A request, its reviews, what MW203 finds in its approval, and (with ``as``) the gates
    that approver would meet now."""
    return JSON(promotion.detail(store_of(request), request_id, as_).to_dict())


@router.post("/promotions/{request_id}/approve", dependencies=[Depends(require(*APPROVE))])
def approve_promotion(request_id: str, body: Approval, request: Request) -> dict:
    """Judge every gate and, when all pass (or ``override`` with a reason), move the alias.
    A refusal is recorded too: 200 either way; read ``outcome`` (approved, overridden or
    refused)."""
    approver = acting_as(request, body.approver, "approver")
    res = promotion.approve(store_of(request), request_id, approver, override=body.override,
                            reason=body.reason, token_id=token_of(request).id)
    return JSON(res.to_dict())
