"""/api/v1/decisions: batch ingest (one chain block per batch), get one, list a page at a
time, export."""

from __future__ import annotations

import contextlib
import threading
import weakref

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...errors import ModelwardError, ValidationError
from ...ledger import decisions as ledger_decisions
from ...ledger.engine import Store
from ...registry.decision_list import export, filter_of, list_decisions
from ...timefmt import now_us
from ..auth import READ, WRITE, require
from ..limits import body_limit
from ..metrics import ingest_counts
from ._common import BatchError, ItemError, batch_schema, read_batch, store_of

router = APIRouter(tags=["decisions"])
MAX_PROBLEMS = 50  # bad items named in one error; the rest are counted

_DIGEST = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
_TEXT = {"type": "string", "maxLength": 300}
DECISION_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "One decision, as ledger.decisions.normalize accepts it.",
    "properties": {
        "id": {"type": "string", "format": "uuid",
               "description": "Client-made UUID (v7): a re-sent id is never duplicated."},
        "at": {"anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
               "description": "Microseconds since the epoch, or ISO 8601 (default: now)."},
        "alias": {"type": "string", "maxLength": 200},
        **{f: _DIGEST for f in ledger_decisions.DIGEST_FIELDS},
        "vendor_model_id": _TEXT, "vendor_fingerprint": _TEXT, "subject": _TEXT,
        "process": _TEXT, "input_digest": _DIGEST, "output_digest": _DIGEST,
        "input_text": {"type": "string"}, "output_text": {"type": "string"},
        "segments": {"type": "object", "additionalProperties": {
            "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                      {"type": "null"}]}},
        "gate": {"type": "object", "additionalProperties": False, "properties": {
            "threshold": {"type": "number"},
            "candidates": {"type": "integer", "minimum": 0},
            "passed": {"type": "integer", "minimum": 0}}},
        "extra": {"type": "object"},
    },
}


_turns: weakref.WeakKeyDictionary[Store, threading.Lock] = weakref.WeakKeyDictionary()


def _writer_turn(store: Store):
    """SQLite has one writer: concurrent batches would wait in its busy handler, which
    sleeps in growing steps (p99 in seconds with 8 clients). Waiting on a lock in this
    process instead wakes the next batch the moment the last commits. PostgreSQL appends
    serialise on their advisory lock already."""
    if store.dialect != "sqlite":
        return contextlib.nullcontext()
    return _turns.setdefault(store, threading.Lock())


def ingest(store: Store, raw: bytes, process: str) -> dict:
    """Validate every item of a batch, then write them all as one chain block, or nothing."""
    items = read_batch(raw, "decisions")
    rows, payloads, problems = [], [], []
    seen: dict[str, int] = {}
    now, normalize = now_us(), ledger_decisions.normalize
    skew, window = store.settings.clock_skew, store.settings.ingest_window
    for i, item in enumerate(items):
        try:
            row, payload = normalize(item, now=now, process=process)
            ledger_decisions.check_time(row[1], now, skew=skew, window=window)
        except ValidationError as exc:
            problems.append(ItemError(exc, "decisions", i))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        first = seen.setdefault(row[0], i)
        if first != i:
            problems.append(ItemError(ValidationError(f"repeats the id of item {first}",
                                                      field="id"), "decisions", i))
            continue
        rows.append(row)
        if payload is not None:
            payloads.append(payload)
    if problems:
        raise BatchError("decisions", problems)
    with _writer_turn(store):
        res = ledger_decisions.append(store, rows, payloads)
    return {"inserted": res.inserted, "duplicates": res.duplicates, "block": res.block}


@router.post("/decisions", dependencies=[Depends(require(*WRITE))],
             openapi_extra=batch_schema(DECISION_SCHEMA, "decisions"))
@body_limit("max_batch_body")
async def post_decisions(request: Request) -> dict:
    """Record a batch of decisions (a JSON array, or ``{"decisions": [...]}``): all or
    nothing, every bad item named by index; ids already recorded with the same content count
    as duplicates, with different content they are a conflict (409 naming the ids)."""
    raw = await request.body()
    process = f"api:{request.state.token.name}"  # default when an item names no process
    counts = ingest_counts(request.app)
    try:
        result = await run_in_threadpool(ingest, store_of(request), raw, process)
    except ModelwardError:
        counts["refused"] += 1
        raise
    counts["batches"] += 1
    counts["inserted"] += result["inserted"]
    counts["duplicates"] += result["duplicates"]
    return result


@router.get("/decisions", dependencies=[Depends(require(*READ))])
def search_decisions(
    request: Request,
    response: Response,
    subject: str | None = None,
    alias: str | None = None,
    process: str | None = Query(None, description="The process that recorded the decision."),
    digest: str | None = Query(None, description="A digest any digest field names."),
    since: str | None = Query(None, description="ISO 8601, or a duration back from now (7d); decisions at or after."),
    until: str | None = Query(None, description="ISO 8601, or a duration back from now (1h); decisions before."),
    cursor: str | None = Query(None, description="The X-Next-Cursor of the previous page."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    """Decisions by subject, alias, process, digest and time, newest first, a page at a
    time (keyset): each with ``alias_digest`` (where its alias pointed then) and
    ``alias_verdict``; the next page's cursor is in the ``X-Next-Cursor`` header."""
    flt = filter_of(subject=subject, alias=alias, process=process, digest=digest,
                    since=since, until=until)
    found = list_decisions(store_of(request), flt, cursor=cursor, limit=limit)
    if found.next_cursor:
        response.headers["X-Next-Cursor"] = found.next_cursor
    return [item.to_dict() for item in found.items]


@router.get("/decisions/export", dependencies=[Depends(require(*READ))])
def export_decisions(
    request: Request,
    format: str = Query("jsonl", description="csv or jsonl"),
    subject: str | None = None, alias: str | None = None, process: str | None = None,
    digest: str | None = None, since: str | None = None, until: str | None = None,
) -> StreamingResponse:
    """Every decision of the filter (the parameters of ``GET /decisions``), streamed as
    CSV or JSON lines, newest first."""
    flt = filter_of(subject=subject, alias=alias, process=process, digest=digest,
                    since=since, until=until)
    return export_response(store_of(request), flt, format)


def export_response(store, flt, fmt: str) -> StreamingResponse:
    """The streamed export the API and the dashboard both send."""
    body = export(store, flt, fmt)  # checks the format before anything is sent
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    name = "decisions.csv" if fmt == "csv" else "decisions.jsonl"
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/decisions/{decision_id}", dependencies=[Depends(require(*READ))])
def get_decision(decision_id: str, request: Request) -> dict:
    """One decision as recorded (digests, segments, gate, chain block and position)."""
    with store_of(request).read() as conn:
        return ledger_decisions.get(conn, decision_id).to_dict()
