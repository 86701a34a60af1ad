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
from modelward.ledger import subject_keys

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


def keyed(ledger, subject, plain):
    """What the ledger chains for a text digest recorded for ``subject`` (keyed)."""
    with ledger.store.read() as conn:
        return subject_keys.chained_digest(conn, subject, plain)


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
    # a vendor's model name is attributed to its hosted artifact, not recorded as an alias
    assert (one.alias, one.model_digest) == (None, hosted)
    assert one.extra["request_model"] == "gpt-4o"
    assert (one.vendor_model_id, one.vendor_fingerprint) == ("gpt-4o-2024-08-06", "fp_one")
    assert (two.vendor_model_id, two.vendor_fingerprint) == ("gpt-4o-2024-11-20", "fp_two")
    assert one.subject == "u-1" and one.segments == {"plan": "pro"}
    assert one.extra["endpoint"] == "chat.completions"
    assert one.extra["usage"] == {"prompt_tokens": 1, "completion_tokens": 2,
                                  "total_tokens": 3}
    assert one.extra["response_id"] == "chatcmpl-1"
    assert 0 < one.extra["latency_ms"] < 10_000
    assert one.input_digest == keyed(ledger, "u-1", dg.of_text('[{"content":"hello","role":"user"}]'))
    assert one.output_digest == keyed(ledger, "u-1", dg.of_text("echo: hello"))
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
    assert (r.alias, r.model_digest, r.subject) == (None, dg.of_text("openai:gpt-4.1"), "u-9")
    assert r.extra["usage"] == {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6}
    assert r.extra["route"] == "/ask" and r.extra["endpoint"] == "responses"
    kept = payload(ledger, r.id)
    assert (kept.input_text, kept.output_text) == ("why?", "answer to why?")
    assert r.output_digest == keyed(ledger, "u-9", dg.of_text("answer to why?"))

    assert e.model_digest is None
    assert e.embedder_digest == dg.of_text("openai:text-embedding-3-small")
    assert e.output_digest == keyed(ledger, e.subject,
                                    dg.of_bytes(b"[[2.0,0.5,-0.25],[3.0,0.5,-0.25]]"))
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


def test_an_embeddings_call_is_attributed_to_a_hosted_embedder_and_guards_stay_quiet(ledger,
                                                                                    server):
    """No error-severity MW101 on a correctly instrumented embeddings call, and a prompt
    given in ``uses`` is not stamped on it (no MW301 for a prompt the call never used)."""
    from modelward.guards.runner import run_guard

    prompt = ledger_artifacts.register_bytes(ledger.store, "prompt", b"Be brief.",
                                             name="support").artifact.digest
    embedder = ledger_artifacts.register_hosted(ledger.store, "openai:text-embedding-3-small",
                                                name="te3s", kind="embedder").artifact.digest
    with ledger.store.write() as conn:
        ledger_aliases.set_alias(conn, "prompt/support@production", prompt)
        ledger_aliases.set_alias(conn, "embed/prod", embedder)
    client = instrument(client_for(server), ledger, uses=["prompt/support@production",
                                                          "embed/prod"])
    client.embeddings.create(model="text-embedding-3-large", input="hi")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "q"}])
    e, c = decisions(ledger)
    assert (e.alias, e.model_digest, e.prompt_digest) == (None, None, None)
    assert e.embedder_digest == dg.of_text("openai:text-embedding-3-large")  # what was called
    assert (c.prompt_digest, c.embedder_digest) == (prompt, embedder)  # a RAG chat uses both
    assert run_guard(ledger.store, ledger.settings, "MW101") == []
    # explicit per-kind uses
    instrument(client, ledger, uses={"embeddings": ["embed/prod"], "chat": []})
    client.embeddings.create(model="embed/prod", input="x")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "q"}])
    *_, e2, c2 = decisions(ledger)
    assert (e2.alias, e2.embedder_digest) == ("embed/prod", embedder)
    assert (c2.prompt_digest, c2.embedder_digest) == (None, None)
    assert run_guard(ledger.store, ledger.settings, "MW101") == []


def _stream_chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o", stream=True,
                                          messages=[{"role": "user", "content": "hello there"}],
                                          **kw)


def test_streamed_chat_is_recorded_when_the_stream_ends_with_usage(ledger, server):
    client = instrument(client_for(server), ledger, keep_text=True)
    server.state.model = "gpt-4o-2024-08-06"
    with context(subject="u-s") as rec:
        stream = _stream_chat(client, stream_options={"include_usage": True})
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo: hello there"
    [d] = decisions(ledger)
    assert rec.decision_ids == [d.id]
    assert (d.vendor_model_id, d.vendor_fingerprint, d.subject) == (
        "gpt-4o-2024-08-06", "fp_one", "u-s")
    assert d.model_digest == dg.of_text("openai:gpt-4o")
    assert d.extra["stream"] == "completed" and d.extra["response_id"] == "chatcmpl-s"
    assert d.extra["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    assert payload(ledger, d.id).output_text == "echo: hello there"
    assert d.output_digest is None or d.output_digest == keyed(ledger, "u-s",
                                                               dg.of_text("echo: hello there"))
    # without include_usage there is no usage to record, and the rest is the same
    with _stream_chat(client) as stream:
        for _chunk in stream:
            pass
    second = decisions(ledger)[-1]
    assert second.extra["stream"] == "completed" and "usage" not in second.extra


def test_an_abandoned_stream_is_recorded_with_what_was_streamed(ledger, server):
    client = instrument(client_for(server), ledger, keep_text=True)
    stream = _stream_chat(client)
    seen = ""
    for chunk in stream:
        seen += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        if seen:
            break
    stream.close()
    [d] = decisions(ledger)
    assert d.extra["stream"] == "abandoned"
    assert payload(ledger, d.id).output_text == "echo:"
    stream = _stream_chat(client)
    next(iter(stream))
    del stream  # dropped without close(): recorded when it is collected
    import gc

    gc.collect()
    assert [x.extra["stream"] for x in decisions(ledger)] == ["abandoned", "abandoned"]


def test_streamed_responses_sync_and_async(ledger, server):
    client = instrument(client_for(server), ledger, keep_text=True)
    server.state.model = "gpt-4.1-2025-04-14"
    with client.responses.create(model="gpt-4.1", input="why?", stream=True) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "answer to why?"
    aclient = instrument(client_for(server, openai.AsyncOpenAI), ledger, keep_text=True)

    async def go():
        out = []
        stream = await aclient.responses.create(model="gpt-4.1", input="how?", stream=True)
        async for event in stream:
            if event.type == "response.output_text.delta":
                out.append(event.delta)
        chat = await aclient.chat.completions.create(
            model="gpt-4o", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "async hi"}])
        async with chat:
            async for chunk in chat:
                out.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
        return "".join(out)

    assert asyncio.run(go()) == "answer to how?echo: async hi"
    one, two, three = decisions(ledger)
    for d in (one, two):
        assert d.vendor_model_id == "gpt-4.1-2025-04-14" and d.extra["stream"] == "completed"
        assert d.extra["usage"] == {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6}
        assert d.extra["response_id"] == "resp_s"
    assert payload(ledger, two.id).output_text == "answer to how?"
    assert three.extra["stream"] == "completed" and three.extra["usage"]["total_tokens"] == 4
    assert payload(ledger, three.id).output_text == "echo: async hi"
