"""OTLP ingest at /v1/traces (real OTLPSpanExporter to a running uvicorn) and the span
processor."""

from __future__ import annotations

import base64
import logging

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelward import digest as dg
from modelward.integrations.otel import ModelwardSpanProcessor, decision_id
from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import decisions as ledger_decisions
from modelward.ledger import subject_keys

from .web_server import WebServer


@pytest.fixture
def web(ledger):
    with WebServer(ledger) as srv:
        yield srv


def registered(ledger):
    store = ledger.store
    model = ledger_artifacts.register_hosted(store, "openai:gpt-4o-2024-08-06",
                                             name="gpt-4o").artifact.digest
    prompt = ledger_artifacts.register_bytes(store, "prompt", b"Be brief.",
                                             name="support").artifact.digest
    with store.write() as conn:
        ledger_aliases.set_alias(conn, "chat/v1", model)
        ledger_aliases.set_alias(conn, "prompt/support@production", prompt)
    return model, prompt


def all_decisions(ledger):
    with ledger.store.read() as conn:
        return {d.id: d for d in ledger_decisions.search(conn, limit=1000)}


def test_exporter_to_running_server_records_genai_spans(ledger, web):
    model, prompt = registered(ledger)
    exporter = OTLPSpanExporter(endpoint=f"{web.url}/v1/traces",
                                headers={"Authorization": f"Bearer {web.writer}"})
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(ModelwardSpanProcessor(
        ledger, aliases=["prompt/support@production"]))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")

    with tracer.start_as_current_span("handle request"):  # not GenAI: ignored
        with tracer.start_as_current_span("chat chat/v1", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
                "gen_ai.request.model": "chat/v1", "gen_ai.request.temperature": 0.2}) as s1:
            s1.set_attributes({
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.openai.response.system_fingerprint": "fp_44709d6fcb",
                "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hello",
                "gen_ai.completion.0.content": "hi there",
                "modelward.subject": "u-7", "modelward.segment.plan": "pro"})
        with tracer.start_as_current_span("embeddings", attributes={
                "gen_ai.operation.name": "embeddings", "gen_ai.system": "openai",
                "gen_ai.request.model": "text-embedding-3-small"}) as s2:
            s2.set_attribute("gen_ai.response.model", "text-embedding-3-small")

    spans = {s.name: s for s in memory.get_finished_spans()}
    assert spans["chat chat/v1"].attributes["modelward.model_digest"] == model
    assert spans["chat chat/v1"].attributes["modelward.prompt_digest"] == prompt
    assert "modelward.prompt_digest" not in spans["handle request"].attributes

    found = all_decisions(ledger)
    assert set(found) == {decision_id(s1), decision_id(s2)}
    chat = found[decision_id(s1)]
    assert (chat.alias, chat.model_digest, chat.prompt_digest) == ("chat/v1", model, prompt)
    assert (chat.vendor_model_id, chat.vendor_fingerprint) == ("gpt-4o-2024-08-06",
                                                                "fp_44709d6fcb")
    assert chat.at == spans["chat chat/v1"].start_time // 1000
    instance = provider.resource.attributes.get("service.instance.id")
    assert (chat.subject, chat.segments, chat.process) == (
        "u-7", {"plan": "pro"}, f"support-bot:{instance}" if instance else "support-bot")
    with ledger.store.read() as conn:  # keyed with the subject's key
        assert chat.input_digest == subject_keys.chained_digest(
            conn, "u-7", dg.of_text('{"0.content":"hello","0.role":"user"}'))
        assert chat.output_digest == subject_keys.chained_digest(
            conn, "u-7", dg.of_text('{"0.content":"hi there"}'))
    assert chat.extra["usage"] == {"input_tokens": 12, "output_tokens": 5}
    assert chat.extra["request"] == {"temperature": 0.2}
    assert chat.extra["span_name"] == "chat chat/v1" and chat.extra["operation"] == "chat"
    assert chat.extra["latency_ms"] >= 0
    emb = found[decision_id(s2)]
    assert emb.embedder_digest == dg.of_text("openai:text-embedding-3-small")
    assert emb.model_digest is None and emb.prompt_digest == prompt
    with ledger.store.read() as conn:
        assert ledger_artifacts.get(conn, emb.embedder_digest).kind == "embedder"

    # the exporter re-sends the same spans (a retry): nothing is recorded twice
    again = exporter.export(list(memory.get_finished_spans()))
    assert again == SpanExportResult.SUCCESS
    assert len(all_decisions(ledger)) == 2
    provider.shutdown()


def json_span(span_id: str, **attrs) -> dict:
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}  # OTLP JSON sends 64-bit ints as strings
        return {"stringValue": v}
    return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id,
            "name": "chat", "startTimeUnixNano": "1772366400000000000",
            "endTimeUnixNano": "1772366400250000000",
            "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()]}


def test_json_ingest_with_modelward_attributes_and_a_rejected_span(ledger, web, caplog):
    caplog.set_level(logging.WARNING, logger="modelward.otlp")
    model, prompt = registered(ledger)
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "batch-job"}}]},
        "scopeSpans": [{"spans": [
            json_span("eee19b7ec3c1b174", **{
                "gen_ai.request.model": "chat/v1",
                "modelward.decision_id": "0195f2a4-7b1c-7d2e-8f3a-1b2c3d4e5f60",
                "modelward.model_digest": model, "modelward.prompt_digest": prompt,
                "gen_ai.input.messages": '[{"role":"user","content":"q"}]',
                "gen_ai.output.messages": '[{"role":"assistant","content":"a"}]',
                "gen_ai.response.system_fingerprint": "fp_1", "modelward.keep_text": True}),
            json_span("eee19b7ec3c1b175", **{"gen_ai.request.model": "chat/v1",
                                             "modelward.model_digest": "sha256:nope"}),
            json_span("eee19b7ec3c1b176", **{"http.method": "GET"}),
        ]}]}]}
    resp = httpx.post(f"{web.url}/v1/traces", json=body,
                      headers={"Authorization": f"Bearer {web.writer}"})
    assert resp.status_code == 200
    assert resp.json() == {"partialSuccess": {
        "rejectedSpans": 1,
        "errorMessage": "span eee19b7ec3c1b175: model_digest: not a sha256:<64 hex> digest: "
                        "'sha256:nope'"}}
    health = httpx.get(f"{web.url}/healthz").json()["otlp"]
    assert health == {"requests": 1, "spans": 3, "accepted": 1, "duplicates": 0,
                      "ignored": 1, "rejected": 1}
    assert "OTLP ingest rejected 1 of 3 spans (1 rejected since start): span " \
        "eee19b7ec3c1b175" in caplog.text
    [d] = all_decisions(ledger).values()
    assert d.id == "0195f2a4-7b1c-7d2e-8f3a-1b2c3d4e5f60"
    assert (d.alias, d.model_digest, d.prompt_digest, d.vendor_fingerprint) == (
        "chat/v1", model, prompt, "fp_1")
    assert d.at == 1772366400000000 and d.extra["latency_ms"] == 250.0
    assert d.process == "batch-job"
    with ledger.store.read() as conn:
        kept = ledger_decisions.payload(conn, d.id)
    assert kept.input_text == '[{"role":"user","content":"q"}]'
    assert kept.output_text == '[{"role":"assistant","content":"a"}]'


@pytest.mark.parametrize("content_type,body,status,code,message", [
    ("application/x-protobuf", b"\x0a\xff", 400, "validation_error",
     "body: not an OTLP ExportTraceServiceRequest in protobuf"),
    ("application/json", b"{not json", 400, "validation_error", "body: not valid JSON"),
    ("application/json", b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}',
     400, "validation_error",
     "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex digits, got 'xyz'"),
    ("text/plain", b"hello", 415, "unsupported_media_type",
     "unsupported content type 'text/plain'"),
])
def test_malformed_bodies_get_the_error_envelope(ledger, web, content_type, body, status,
                                                 code, message):
    resp = httpx.post(f"{web.url}/v1/traces", content=body,
                      headers={"Authorization": f"Bearer {web.writer}",
                               "content-type": content_type})
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(message)
    assert all_decisions(ledger) == {}


def test_ingest_needs_a_writer_token(ledger, web):
    url = f"{web.url}/v1/traces"
    resp = httpx.post(url, json={})
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "unauthorized")
    resp = httpx.post(url, json={}, headers={"Authorization": f"Bearer {web.reader}"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "forbidden")
    resp = httpx.post(url, json={}, headers={"Authorization": f"Bearer {web.writer}"})
    assert (resp.status_code, resp.json()) == (200, {})


def test_empty_protobuf_export_and_bytes_attributes(ledger, web):
    resp = httpx.post(f"{web.url}/v1/traces", content=b"",
                      headers={"Authorization": f"Bearer {web.writer}",
                               "content-type": "application/x-protobuf"})
    assert (resp.status_code, resp.content) == (200, b"")
    span = json_span("00000000000000aa", **{"gen_ai.request.model": "m"})
    span["attributes"].append({"key": "gen_ai.raw",
                               "value": {"bytesValue": base64.b64encode(b"\x01\x02").decode()}})
    resp = httpx.post(f"{web.url}/v1/traces",
                      json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]},
                      headers={"Authorization": f"Bearer {web.writer}"})
    assert resp.json() == {}
    [d] = all_decisions(ledger).values()
    # no gen_ai.system: the model cannot be attributed, and MW101 will say so
    assert (d.alias, d.model_digest) == ("m", None)


def test_span_processor_follows_alias_moves_and_filters_spans(ledger):
    model, _ = registered(ledger)
    newer = ledger_artifacts.register_hosted(ledger.store, "openai:gpt-4o-2024-11-20",
                                             name="gpt-4o").artifact.digest
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ModelwardSpanProcessor(ledger, aliases=["chat/v1"],
                                                       refresh=0))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    genai = {"gen_ai.request.model": "gpt-4o"}
    with tracer.start_as_current_span("one", attributes=genai):
        pass
    with ledger.store.write() as conn:
        ledger_aliases.set_alias(conn, "chat/v1", newer)
    with tracer.start_as_current_span("two", attributes=genai):
        pass
    with tracer.start_as_current_span("plain"):
        pass
    one, two, plain = memory.get_finished_spans()
    assert (one.attributes["modelward.model_digest"], one.attributes["modelward.alias"]) == (
        model, "chat/v1")
    assert two.attributes["modelward.model_digest"] == newer
    assert not any(k.startswith("modelward.") for k in plain.attributes)

    every = ModelwardSpanProcessor(ledger, aliases={"model": "chat/v1", "x": "no/such"},
                                   all_spans=True, attributes={"subject": "u-1"})
    assert every.attributes_for() == {"modelward.model_digest": newer,
                                      "modelward.alias": "chat/v1",
                                      "modelward.subject": "u-1"}
    provider.shutdown()


def test_vendor_spans_are_attributed_to_hosted_artifacts_without_mw101(ledger, web):
    """Embeddings and chat spans naming vendor models (not modelward aliases) record the
    hosted artifact's digest and the name asked for, and no guard calls them unattributed."""
    from modelward.guards.runner import run_guard

    spans = [json_span("00000000000000b1", **{
                 "gen_ai.request.model": "text-embedding-3-small", "gen_ai.system": "openai",
                 "gen_ai.operation.name": "embeddings",
                 "gen_ai.response.model": "text-embedding-3-small"}),
             json_span("00000000000000b2", **{
                 "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
                 "gen_ai.operation.name": "chat", "gen_ai.response.model": "gpt-4o-2024-08-06"})]
    resp = httpx.post(f"{web.url}/v1/traces",
                      json={"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]},
                      headers={"Authorization": f"Bearer {web.writer}"})
    assert resp.json() == {}
    found = sorted(all_decisions(ledger).values(), key=lambda d: d.extra["span_id"])
    emb, chat = found
    assert (emb.alias, emb.embedder_digest, emb.model_digest) == (
        None, dg.of_text("openai:text-embedding-3-small"), None)
    assert emb.extra["request_model"] == "text-embedding-3-small"
    assert (chat.alias, chat.model_digest) == (None, dg.of_text("openai:gpt-4o"))
    assert run_guard(ledger.store, ledger.settings, "MW101") == []
