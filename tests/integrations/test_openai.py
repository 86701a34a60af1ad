"""modelward.integrations.openai against the real openai package and a local server."""

from __future__ import annotations

import asyncio
import logging

import openai
import pytest

from modelward import digest as dg
from modelward.integrations.openai import context, instrument, uninstrument
from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import decisions as ledger_decisions

from .openai_server import OpenAIServer


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


def client_for(server, cls=openai.OpenAI):
    return cls(base_url=server.url, api_key="sk-test", max_retries=0)


def decisions(ledger):
    ledger.flush()
    with ledger.store.read() as conn:
        return sorted(ledger_decisions.search(conn, limit=1000), key=lambda d: d.at)


def payload(ledger, decision_id):
    with ledger.store.read() as conn:
        return ledger_decisions.payload(conn, decision_id)


def test_chat_records_hosted_model_vendor_ids_usage_and_digests(ledger, server):
    client = instrument(client_for(server), ledger, subject="u-1", segments={"plan": "pro"})
    server.state.model = "gpt-4o-2024-08-06"
    messages = [{"role": "user", "content": "hello"}]
    first = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert first.choices[0].message.content == "echo: hello"
    server.state.fingerprint = "fp_two"  # the vendor redeploys mid-test
    server.state.model = "gpt-4o-2024-11-20"
    client.chat.completions.create(model="gpt-4o", messages=messages)

    one, two = decisions(ledger)
    hosted = dg.of_text("openai:gpt-4o")
    assert (one.alias, one.model_digest) == ("gpt-4o", hosted)
    assert (one.vendor_model_id, one.vendor_fingerprint) == ("gpt-4o-2024-08-06", "fp_one")
    assert (two.vendor_model_id, two.vendor_fingerprint) == ("gpt-4o-2024-11-20", "fp_two")
    assert one.subject == "u-1" and one.segments == {"plan": "pro"}
    assert one.extra["endpoint"] == "chat.completions"
    assert one.extra["usage"] == {"prompt_tokens": 1, "completion_tokens": 2,
                                  "total_tokens": 3}
    assert one.extra["response_id"] == "chatcmpl-1"
    assert 0 < one.extra["latency_ms"] < 10_000
    assert one.input_digest == dg.of_text('[{"content":"hello","role":"user"}]')
    assert one.output_digest == dg.of_text("echo: hello")
    assert payload(ledger, one.id) is None  # no text without keep_text
    with ledger.store.read() as conn:
        art = ledger_artifacts.get(conn, hosted)
    assert (art.hosted_id, art.kind, art.name, art.payload) == (
        "openai:gpt-4o", "model", "gpt-4o", "vendor")


def test_alias_asked_for_is_resolved_on_every_call(ledger, server):
    old = ledger_artifacts.register_hosted(ledger.store, "openai:gpt-4o-2024-08-06",
                                           name="gpt-4o").artifact.digest
    new = ledger_artifacts.register_hosted(ledger.store, "openai:gpt-4o-2024-11-20",
                                           name="gpt-4o").artifact.digest
    prompt = ledger_artifacts.register_bytes(ledger.store, "prompt", b"Be brief.",
                                             name="support").artifact.digest
    with ledger.store.write() as conn:
        ledger_aliases.set_alias(conn, "chat/v1", old)
        ledger_aliases.set_alias(conn, "prompt/support@production", prompt)
    client = instrument(client_for(server), ledger, uses=["prompt/support@production"])
    client.chat.completions.create(model="chat/v1", messages=[{"role": "user", "content": "a"}])
    with ledger.store.write() as conn:
        ledger_aliases.set_alias(conn, "chat/v1", new)
    client.chat.completions.create(model="chat/v1", messages=[{"role": "user", "content": "b"}])

    one, two = decisions(ledger)
    assert (one.alias, one.model_digest, one.prompt_digest) == ("chat/v1", old, prompt)
    assert (two.alias, two.model_digest, two.prompt_digest) == ("chat/v1", new, prompt)
    assert one.vendor_model_id == "chat/v1"  # what the server reported back


def test_responses_and_embeddings_with_kept_text(ledger, server):
    client = instrument(client_for(server), ledger, keep_text=True)
    with context(subject="u-9", extra={"route": "/ask"}) as rec:
        resp = client.responses.create(model="gpt-4.1", input="why?")
        emb = client.embeddings.create(model="text-embedding-3-small", input=["ab", "abc"])
    assert resp.output_text == "answer to why?"
    assert [d.embedding for d in emb.data] == [[2.0, 0.5, -0.25], [3.0, 0.5, -0.25]]

    r, e = decisions(ledger)
    assert rec.decision_ids == [r.id, e.id]
    assert (r.alias, r.model_digest, r.subject) == ("gpt-4.1", dg.of_text("openai:gpt-4.1"),
                                                   "u-9")
    assert r.extra["usage"] == {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6}
    assert r.extra["route"] == "/ask" and r.extra["endpoint"] == "responses"
    kept = payload(ledger, r.id)
    assert (kept.input_text, kept.output_text) == ("why?", "answer to why?")
    assert r.output_digest == dg.of_text("answer to why?")

    assert e.model_digest is None
    assert e.embedder_digest == dg.of_text("openai:text-embedding-3-small")
    assert e.output_digest == dg.of_bytes(b"[[2.0,0.5,-0.25],[3.0,0.5,-0.25]]")
    assert payload(ledger, e.id).input_text == '["ab","abc"]'
    with ledger.store.read() as conn:
        assert ledger_artifacts.get(conn, e.embedder_digest).kind == "embedder"


def test_api_errors_propagate_and_record_nothing(ledger, server):
    client = instrument(client_for(server), ledger)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="missing-model",
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404
    assert "The model does not exist" in str(info.value)
    assert decisions(ledger) == []


def test_a_recording_error_is_logged_and_the_response_returned(ledger, server, caplog):
    client = instrument(client_for(server), ledger, subject="s" * 301)  # too long to record
    with caplog.at_level(logging.WARNING, logger="modelward.integrations.openai"):
        resp = client.chat.completions.create(model="gpt-4o",
                                              messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "echo: hi"
    assert "could not record an OpenAI chat.completions call" in caplog.text
    assert "subject: longer than 300 characters" in caplog.text
    assert decisions(ledger) == []


def test_async_client_and_uninstrument(ledger, server):
    client = instrument(client_for(server, openai.AsyncOpenAI), ledger)

    async def call(text):
        return await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    async def both():
        return await asyncio.gather(call("one"), call("two"))

    answers = asyncio.run(both())
    assert sorted(a.choices[0].message.content for a in answers) == ["echo: one", "echo: two"]
    recorded = decisions(ledger)
    assert len(recorded) == 2
    assert {d.output_digest for d in recorded} == {dg.of_text("echo: one"),
                                                   dg.of_text("echo: two")}
    assert all(d.model_digest == dg.of_text("openai:gpt-4o-mini") for d in recorded)
    uninstrument(client)
    asyncio.run(call("three"))
    assert len(decisions(ledger)) == 2
    assert len(server.state.requests) == 3


def test_instrumenting_twice_replaces_the_settings_and_records_once(ledger, server):
    client = client_for(server)
    instrument(client, ledger, subject="first")
    instrument(client, ledger, subject="second")  # replaces, never wraps twice
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "q"}])
    [only] = decisions(ledger)
    assert only.subject == "second"
