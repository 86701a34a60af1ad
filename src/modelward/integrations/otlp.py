"""OTLP trace ingest: GenAI spans become decisions.

:func:`parse` reads an ``ExportTraceServiceRequest`` in protobuf or in the OTLP JSON
encoding (hex trace and span ids, lowerCamelCase keys); :func:`to_decision` maps one GenAI
span onto decision fields; :func:`ingest` validates and appends a request's decisions as one
chain block. A span is a GenAI span when it carries a ``gen_ai.*`` attribute or a
``modelward.decision_id``; every other span is ignored. Decision ids are
``modelward.decision_id`` or a UUIDv5 of the trace and span ids, so a re-sent span is
never recorded twice. See docs/integrations.md for the attribute mapping.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import uuid
from dataclasses import dataclass, field

import orjson

from .. import digest as dg
from ..errors import ValidationError
from ..ids import is_uuid
from ..ledger import decisions as ledger_decisions
from ..ledger.engine import Store
from ..timefmt import now_us
from ._attribution import Attributor

# Fixed forever: the UUIDv5 of a span must stay the same across releases.
SPAN_NAMESPACE = uuid.UUID("5b0c5f0e-6d0a-4c3e-9a57-6d6f64656c77")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DIGEST_ATTRS = ("model_digest", "prompt_digest", "embedder_digest", "reranker_digest",
                "config_digest", "input_digest", "output_digest")
FINGERPRINT_ATTRS = ("gen_ai.openai.response.system_fingerprint",
                     "gen_ai.response.system_fingerprint")


@dataclass
class Span:
    trace_id: str  # hex
    span_id: str  # hex
    name: str
    start_ns: int
    end_ns: int
    attributes: dict
    resource: dict


@dataclass
class IngestResult:
    spans: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


# --- parsing ----------------------------------------------------------------------------
def _pb_value(v):
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def _parse_protobuf(body: bytes) -> list[Span]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ValidationError(f"not an OTLP ExportTraceServiceRequest in protobuf ({exc})",
                              field="body") from None
    spans = []
    for rs in request.resource_spans:
        resource = {kv.key: _pb_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(Span(s.trace_id.hex(), s.span_id.hex(), s.name,
                                  s.start_time_unix_nano, s.end_time_unix_nano,
                                  {kv.key: _pb_value(kv.value) for kv in s.attributes},
                                  resource))
    return spans


def _get(obj: dict, camel: str, snake: str, default=None):
    value = obj.get(camel, obj.get(snake, default))
    return default if value is None else value


def _json_value(v, where: str):
    if not isinstance(v, dict):
        raise ValidationError("an attribute value must be an AnyValue object", field=where)
    try:
        for camel, snake, conv in (("stringValue", "string_value", str),
                                   ("boolValue", "bool_value", bool),
                                   ("intValue", "int_value", int),
                                   ("doubleValue", "double_value", float)):
            if camel in v or snake in v:
                return conv(_get(v, camel, snake))
        if "arrayValue" in v or "array_value" in v:
            values = _get(v, "arrayValue", "array_value", {}).get("values") or []
            return [_json_value(x, where) for x in values]
        if "kvlistValue" in v or "kvlist_value" in v:
            return _json_attributes(_get(v, "kvlistValue", "kvlist_value", {}).get("values"),
                                    where)
        if "bytesValue" in v or "bytes_value" in v:
            return base64.b64decode(_get(v, "bytesValue", "bytes_value"), validate=True).hex()
    except (TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise ValidationError(f"a malformed attribute value ({exc})", field=where) from None
    return None


def _json_attributes(items, where: str) -> dict:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValidationError("attributes must be a list of {key, value}", field=where)
    out = {}
    for kv in items:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise ValidationError("an attribute needs a string key", field=where)
        out[kv["key"]] = _json_value(kv.get("value") or {}, f"{where}.{kv['key']}")
    return out


def _hex_id(value, size: int, where: str) -> str:
    if not isinstance(value, str) or len(value) != size * 2:
        raise ValidationError(f"expected {size * 2} hex digits, got {str(value)[:80]!r}",
                              field=where)
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValidationError(f"not hex: {value[:80]!r}", field=where) from None
    return value.lower()


def _nanos(value, where: str) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ValidationError(f"not an integer of nanoseconds: {value!r}", field=where) from None


def _parse_json(body: bytes) -> list[Span]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON ({exc})", field="body") from None
    if not isinstance(doc, dict):
        raise ValidationError("an ExportTraceServiceRequest must be a JSON object",
                              field="body")
    spans = []
    for i, rs in enumerate(_get(doc, "resourceSpans", "resource_spans", [])):
        where = f"resourceSpans[{i}]"
        if not isinstance(rs, dict):
            raise ValidationError("must be an object", field=where)
        resource = _json_attributes((rs.get("resource") or {}).get("attributes"),
                                    f"{where}.resource")
        for j, ss in enumerate(_get(rs, "scopeSpans", "scope_spans", [])):
            for k, s in enumerate((ss or {}).get("spans") or []):
                at = f"{where}.scopeSpans[{j}].spans[{k}]"
                if not isinstance(s, dict):
                    raise ValidationError("a span must be an object", field=at)
                spans.append(Span(
                    _hex_id(_get(s, "traceId", "trace_id"), 16, f"{at}.traceId"),
                    _hex_id(_get(s, "spanId", "span_id"), 8, f"{at}.spanId"),
                    str(s.get("name") or ""),
                    _nanos(_get(s, "startTimeUnixNano", "start_time_unix_nano"), f"{at}.start"),
                    _nanos(_get(s, "endTimeUnixNano", "end_time_unix_nano"), f"{at}.end"),
                    _json_attributes(s.get("attributes"), f"{at}.attributes"), resource))
    return spans


def parse(body: bytes, content_type: str, content_encoding: str | None = None) -> list[Span]:
    """The spans of an OTLP/HTTP trace export body (protobuf or JSON, optionally gzipped)."""
    if (content_encoding or "").strip().lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise ValidationError(f"the gzip body does not decompress ({exc})",
                                  field="body") from None
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        return _parse_protobuf(body)
    if media == JSON:
        return _parse_json(body)
    raise ValidationError(f"unsupported content type {content_type!r}", field="content-type",
                          hint=f"send {PROTOBUF} or {JSON}")


# --- mapping ----------------------------------------------------------------------------
def is_genai(span: Span) -> bool:
    return "modelward.decision_id" in span.attributes or any(
        k.startswith("gen_ai.") for k in span.attributes)


def _text(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else dg.canonical_json(value).decode()


def _indexed(attrs: dict, prefix: str) -> str | None:
    """``gen_ai.prompt.0.role`` … as canonical JSON of {"0.role": …}, or the single attribute."""
    if prefix in attrs:
        return _text(attrs[prefix])
    found = {k[len(prefix) + 1:]: v for k, v in attrs.items() if k.startswith(prefix + ".")}
    return dg.canonical_json(found).decode() if found else None


def _scalar(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def to_decision(span: Span, attributor: Attributor | None) -> dict:
    """Decision fields for one GenAI span (validated later by ledger.decisions.normalize)."""
    a = span.attributes
    start_us = span.start_ns // 1000
    given = a.get("modelward.decision_id")
    did = given if is_uuid(given) else str(
        uuid.uuid5(SPAN_NAMESPACE, f"{span.trace_id}:{span.span_id}"))
    fields: dict = {"id": did, "at": start_us}
    for name in DIGEST_ATTRS:
        if a.get(f"modelward.{name}") is not None:
            fields[name] = a[f"modelward.{name}"]
    asked = a.get("modelward.alias") or a.get("gen_ai.request.model")
    operation = a.get("gen_ai.operation.name")
    request_model = None
    if asked is not None:
        fields["alias"] = _scalar(asked)
        attributed = "model_digest" in fields or "embedder_digest" in fields
        if attributor is not None and isinstance(asked, str) and not attributed:
            vendor = a.get("gen_ai.provider.name") or a.get("gen_ai.system")
            kind = "embedder" if operation == "embeddings" else "model"
            got = attributor.attribute(asked, vendor=vendor if isinstance(vendor, str)
                                       else None, kind=kind, at=start_us)
            if got and "alias" not in got and a.get("modelward.alias") is None:
                # a vendor's model name, attributed to its hosted artifact: not an alias
                request_model = fields.pop("alias")
            for k, v in got.items():
                fields.setdefault(k, v)
    fields["vendor_model_id"] = _scalar(a.get("gen_ai.response.model"))
    fields["vendor_fingerprint"] = next(
        (_scalar(a[k]) for k in FINGERPRINT_ATTRS if a.get(k) is not None), None)
    fields["subject"] = _scalar(a.get("modelward.subject"))
    segments = {k[len("modelward.segment."):]: _scalar(v) for k, v in a.items()
                if k.startswith("modelward.segment.")}
    fields["segments"] = segments or None
    service = span.resource.get("service.name")
    process = a.get("modelward.process") or (
        f"{service}:{span.resource['service.instance.id']}"
        if service and span.resource.get("service.instance.id") else service)
    fields["process"] = None if process is None else str(process)[:300]
    input_text = _text(a.get("gen_ai.input.messages")) or _indexed(a, "gen_ai.prompt")
    output_text = _text(a.get("gen_ai.output.messages")) or _indexed(a, "gen_ai.completion")
    if a.get("modelward.keep_text") is True:
        fields["input_text"], fields["output_text"] = input_text, output_text
    else:
        if input_text is not None:
            fields.setdefault("input_digest", dg.of_text(input_text))
        if output_text is not None:
            fields.setdefault("output_digest", dg.of_text(output_text))
    extra = {"source": "otlp", "trace_id": span.trace_id, "span_id": span.span_id,
             "span_name": span.name,
             "latency_ms": round(max(0, span.end_ns - span.start_ns) / 1e6, 3)}
    if operation is not None:
        extra["operation"] = _scalar(operation)
    if request_model is not None:
        extra["request_model"] = request_model
    usage = {k[len("gen_ai.usage."):]: v for k, v in a.items() if k.startswith("gen_ai.usage.")}
    if usage:
        extra["usage"] = usage
    request = {k[len("gen_ai.request."):]: v for k, v in a.items()
               if k.startswith("gen_ai.request.") and k != "gen_ai.request.model"}
    if request:
        extra["request"] = request
    fields["extra"] = extra
    return {k: v for k, v in fields.items() if v is not None}


def ingest(store: Store, spans: list[Span], attributor: Attributor | None = None
           ) -> IngestResult:
    """Append the decisions of ``spans``' GenAI spans as one chain block; spans that do not
    validate are rejected (counted, with the reason) and the rest are still written."""
    result = IngestResult(spans=len(spans))
    rows, payloads = [], []
    now = now_us()
    for span in spans:
        if not is_genai(span):
            result.ignored += 1
            continue
        try:
            row, payload = ledger_decisions.normalize(to_decision(span, attributor))
            ledger_decisions.check_time(row[1], now, skew=store.settings.clock_skew,
                                        window=store.settings.ingest_window)
        except ValidationError as exc:
            result.rejected += 1
            if len(result.errors) < 10:
                result.errors.append(f"span {span.span_id}: {exc.message}")
            continue
        rows.append(row)
        if payload is not None:
            payloads.append(payload)
    # a span re-sent with other content is rejected (the first content stands), the rest kept
    appended = ledger_decisions.append(store, rows, payloads, on_conflict="report")
    result.accepted, result.duplicates = appended.inserted, appended.duplicates
    for decision_id, fields in sorted(appended.conflicts.items()):
        result.rejected += 1
        if len(result.errors) < 10:
            result.errors.append(f"decision {decision_id}: already recorded with a different "
                                 f"{', '.join(fields)}")
    return result
