"""/api/v1/feedback: a batch of feedback events, validated, written in one transaction."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ...errors import ValidationError
from ...ledger import feedback as ledger_feedback
from ...ledger.engine import Store
from ..auth import WRITE, require
from ..limits import body_limit
from ._common import BatchError, ItemError, batch_schema, read_batch, store_of

router = APIRouter(tags=["feedback"])

FEEDBACK_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["decision_id"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "decision_id": {"type": "string", "format": "uuid"},
        "at": {"type": "string", "format": "date-time"},
        "rating": {"type": "number"},
        "intent": {"enum": list(ledger_feedback.INTENTS)},
        "surface": {"enum": list(ledger_feedback.SURFACES)},
        "author_kind": {"enum": list(ledger_feedback.AUTHOR_KINDS)},
        "author": {"type": "string"}, "comment": {"type": "string"},
        "correction": {"type": "string"}, "meta": {"type": "object"},
    },
}


def add_batch(store: Store, raw: bytes) -> dict:
    items = read_batch(raw, "feedback")
    rows, problems = [], []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        try:
            row = ledger_feedback.normalize(item)
        except ValidationError as exc:
            problems.append(ItemError(exc, "feedback", i))
            continue
        first = seen.setdefault(row["id"], i)
        if first != i:
            problems.append(ItemError(ValidationError(f"repeats the id of item {first}",
                                                      field="id"), "feedback", i))
            continue
        rows.append(row)
    if problems:
        raise BatchError("feedback", problems)
    try:
        with store.write() as conn:
            # lines = indexes: an unknown decision id comes back naming its item
            n = ledger_feedback.add(conn, rows, list(range(len(rows))))
    except ValidationError as exc:
        raise BatchError("feedback", [ItemError(ValidationError(
            exc.detail, field=exc.field, hint="record the decision first, or fix the id"),
            "feedback", exc.line)]) from None
    return {"inserted": n, "duplicates": len(rows) - n}


@router.post("/feedback", dependencies=[Depends(require(*WRITE))],
             openapi_extra=batch_schema(FEEDBACK_SCHEMA, "feedback"))
@body_limit("max_batch_body")
async def post_feedback(request: Request) -> dict:
    """Record feedback events (a JSON array, or ``{"feedback": [...]}``): all or nothing;
    every decision named must be in the ledger; ids already recorded are skipped."""
    raw = await request.body()
    return await run_in_threadpool(add_batch, store_of(request), raw)
