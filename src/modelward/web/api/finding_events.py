"""GET /api/v1/findings/events: the findings' events as server-sent events (the findings
page's live view), from :mod:`modelward.guards.events`.

The stream polls the ledger every :data:`POLL_S` seconds and sends each new
``finding.opened``, ``finding.resolved`` and ``finding.acknowledged`` event with its ``id:``
(a monotonic cursor), so a client reconnecting with ``Last-Event-ID`` resumes with no loss
and no repeat; without one it starts from now. A comment line every :data:`HEARTBEAT_S`
seconds keeps proxies from closing an idle stream. At most :data:`MAX_STREAMS` streams are
open per server: one more is refused with 429.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from ...guards import events
from ...timefmt import now_us
from ..auth import READ, require
from ..errors import AuthError
from ._common import store_of

router = APIRouter(tags=["findings"])
POLL_S = 1.0
HEARTBEAT_S = 15.0
MAX_STREAMS = 16
MAX_LIFETIME_S = 3600.0  # then the stream ends and the client reconnects with its cursor
_lock = threading.Lock()
_open: dict[int, int] = {}  # id(app) -> streams open


def _acquire(app) -> None:
    with _lock:
        if _open.get(id(app), 0) >= MAX_STREAMS:
            raise AuthError(429, "too_many_streams", f"{MAX_STREAMS} event streams are open "
                            "already; close one or retry later")
        _open[id(app)] = _open.get(id(app), 0) + 1


def _release(app) -> None:
    with _lock:
        _open[id(app)] = max(0, _open.get(id(app), 0) - 1)


def open_streams(app) -> int:
    return _open.get(id(app), 0)


@router.get("/findings/events", dependencies=[Depends(require(*READ))],
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def finding_events(
    request: Request,
    last_event_id: str | None = Header(None, alias="Last-Event-ID",
                                       description="Resume after this event id."),
) -> StreamingResponse:
    """A ``text/event-stream`` of ``finding.opened``, ``finding.resolved`` and
    ``finding.acknowledged`` events as guard runs and acks record them; each ``data:`` is
    one JSON object (the finding's key, code, severity, subject, …, or the ack)."""
    return event_response(request, last_event_id)


def event_response(request: Request, last_event_id: str | None) -> StreamingResponse:
    """The stream, for the API route and the findings page's ``/findings/events``."""
    store = store_of(request)
    cursor = events.Cursor.parse(last_event_id) or events.Cursor(now_us())
    app = request.app
    _acquire(app)

    async def stream():
        nonlocal cursor
        try:
            yield f"retry: 2000\n: modelward findings events from {cursor}\n\n"
            started = last_beat = time.monotonic()
            while time.monotonic() - started < MAX_LIFETIME_S:
                if await request.is_disconnected():
                    return
                batch, cursor = await asyncio.to_thread(events.after, store, cursor)
                for e in batch:
                    yield (f"id: {e.id}\nevent: {e.type}\n"
                           f"data: {json.dumps(e.data, sort_keys=True)}\n\n")
                if batch:
                    continue  # more may follow at once
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    last_beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_S)
        finally:
            _release(app)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
