"""/api/v1/audit/{decision_id}: the full account of one decision (``modelward audit``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from ...registry.audit import audit_decision
from ..auth import READ, require
from ._common import store_of

router = APIRouter(tags=["audit"])


@router.get("/audit/{decision_id}", dependencies=[Depends(require(*READ))])
def audit(
    decision_id: str, request: Request,
    quick: bool = Query(False, description="Check payloads for presence and size only "
                        "instead of rehashing them."),
    no_cache: bool = Query(False, description="Rehash every payload and the whole chain "
                           "block even if a recent verification is cached."),
) -> dict:
    """Which artifacts produced a decision, whether they match the alias at that moment,
    whether their payloads are retained, and whether the record verifies."""
    report = audit_decision(store_of(request), decision_id, verify_payloads=not quick,
                            use_cache=not no_cache)
    return report.to_dict()
