"""OTLP/HTTP trace ingest: ``POST /v1/traces`` (protobuf or JSON) turns GenAI spans into
decisions (see modelward.integrations.otlp). Needs a writer token."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from ..errors import ValidationError
from ..integrations import otlp as otlp_ingest
from ..integrations._attribution import Attributor
from .auth import WRITE, require
from .errors import envelope
from .limits import body_limit

router = APIRouter(tags=["otlp"])
log = logging.getLogger("modelward.otlp")
COUNTERS = ("requests", "spans", "accepted", "duplicates", "ignored", "rejected")


def counts(app) -> dict:
    """OTLP ingest counters since the server started (shown on /healthz)."""
    found = getattr(app.state, "otlp_counts", None)
    if found is None:
        found = app.state.otlp_counts = dict.fromkeys(COUNTERS, 0)
    return found


def _count(request: Request, result: otlp_ingest.IngestResult) -> None:
    c = counts(request.app)
    c["requests"] += 1
    for name in COUNTERS[1:]:
        c[name] += getattr(result, name)
    if result.rejected:  # the sender sees partialSuccess; the operator sees this line
        log.warning("OTLP ingest rejected %d of %d spans (%d rejected since start): %s",
                    result.rejected, result.spans, c["rejected"], "; ".join(result.errors))


def _attributor(request: Request) -> Attributor:
    # one per app: it caches which hosted models are registered already
    found = getattr(request.app.state, "otlp_attributor", None)
    if found is None:
        found = request.app.state.otlp_attributor = Attributor(request.app.state.store)
    return found


def _response(media: str, result: otlp_ingest.IngestResult) -> Response:
    message = "; ".join(result.errors)
    if media == otlp_ingest.PROTOBUF:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        out = ExportTraceServiceResponse()
        if result.rejected:
            out.partial_success.rejected_spans = result.rejected
            out.partial_success.error_message = message
        return Response(out.SerializeToString(), media_type=otlp_ingest.PROTOBUF)
    body = b"{}"
    if result.rejected:
        import orjson

        body = orjson.dumps({"partialSuccess": {"rejectedSpans": result.rejected,
                                                "errorMessage": message}})
    return Response(body, media_type=otlp_ingest.JSON)


@router.post("/v1/traces", dependencies=[Depends(require(*WRITE))])
@body_limit("max_otlp_body", gzip=True)
async def export_traces(request: Request) -> Response:
    """OTLP/HTTP ExportTraceServiceRequest: GenAI spans become decisions, others are ignored;
    spans that do not validate are reported as ``partial_success.rejected_spans``.

    The limits middleware has authenticated the request, bounded its size (``max_otlp_body``)
    and decompressed a gzip body within ``max_otlp_decompressed`` and
    ``max_decompression_ratio`` before this reads it; parsing runs on a worker thread."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media not in (otlp_ingest.PROTOBUF, otlp_ingest.JSON):
        return envelope(415, "unsupported_media_type",
                        f"unsupported content type {content_type!r}",
                        hint=f"send {otlp_ingest.PROTOBUF} or {otlp_ingest.JSON}")
    body = await request.body()
    try:
        spans = await run_in_threadpool(otlp_ingest.parse, body, content_type, None)
    except ValidationError as exc:  # OTLP wants 400 for a malformed body (never retried)
        return envelope(400, **exc.to_dict())
    result = await run_in_threadpool(otlp_ingest.ingest, request.app.state.store, spans,
                                     _attributor(request))
    _count(request, result)
    return _response(media, result)
