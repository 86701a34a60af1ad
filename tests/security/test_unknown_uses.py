"""A typo in ``uses=`` never drops decisions: an unknown alias or digest raises at the call
that names it, and with ``strict=False`` (or an alias that stops resolving later) the
decision is recorded with the problem marked in ``extra["uses_problems"]``."""

from __future__ import annotations

import openai
import pytest

from modelward.errors import UnknownAliasError, UnknownArtifactError, ValidationError
from modelward.integrations.openai import context, instrument
from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import decisions as ledger_decisions
from tests.integrations.openai_server import OpenAIServer

GHOST = "sha256:" + "0" * 64


def stored(ledger) -> list:
    ledger.flush()
    with ledger.store.read() as conn:
        return sorted(ledger_decisions.search(conn, limit=100), key=lambda d: d.at)


@pytest.fixture
def prompt(ledger) -> str:
    digest = ledger_artifacts.register_bytes(ledger.store, "prompt", b"Be brief.",
                                             name="support").artifact.digest
    with ledger.store.write() as conn:
        ledger_aliases.set_alias(conn, "prompt/support@production", digest)
    return digest


def test_record_raises_on_an_unknown_alias_or_digest(ledger, prompt):
    with pytest.raises(UnknownAliasError, match="no alias named 'prompt/suport@production'"):
        ledger.record(uses=["prompt/suport@production"], subject="u1")
    with pytest.raises(UnknownArtifactError, match=f"no artifact {GHOST} is registered"):
        ledger.record(uses=[GHOST], subject="u1")
    with pytest.raises(ValidationError, match="uses: expected a Resolution, an alias or a "
                                              "digest, got int"):
        ledger.record(uses=[7], subject="u1")
    assert stored(ledger) == []
    # names and digests that exist fill their fields, as Resolution objects do
    ledger.record(uses=["prompt/support@production"], subject="by-alias")
    ledger.record(uses=[prompt], subject="by-digest")
    by_alias, by_digest = stored(ledger)
    assert (by_alias.alias, by_alias.prompt_digest) == ("prompt/support@production", prompt)
    assert (by_digest.alias, by_digest.prompt_digest) == (None, prompt)


def test_record_with_strict_false_keeps_the_decision_and_marks_the_problem(ledger, prompt):
    did = ledger.record(uses=["prompt/support@production", "prompt/typo", GHOST],
                        strict=False, subject="u1", extra={"route": "/ask"})
    (d,) = stored(ledger)
    assert d.id == did and d.prompt_digest == prompt
    assert d.extra == {"route": "/ask", "uses_problems": [
        "prompt/typo: no alias named 'prompt/typo'",
        f"{GHOST}: no artifact {GHOST} is registered"]}


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


def client_for(server):
    return openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)


def test_instrument_raises_on_a_typo_and_strict_false_records_every_call(ledger, prompt,
                                                                          server):
    with pytest.raises(UnknownAliasError, match="'prompt/suport@production'"):
        instrument(client_for(server), ledger, uses=["prompt/suport@production"])
    with pytest.raises(UnknownAliasError, match="'chat/typo'"):
        instrument(client_for(server), ledger, alias="chat/typo")
    with pytest.raises(UnknownArtifactError, match=GHOST):
        instrument(client_for(server), ledger, uses={"embeddings": [GHOST]})
    client = instrument(client_for(server), ledger, strict=False,
                        uses=["prompt/support@production", "prompt/suport@production"])
    messages = [{"role": "user", "content": "hi"}]
    with context(subject="u1", uses=["embed/typo"]) as rec:
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o", messages=messages)
    found = stored(ledger)
    assert [d.id for d in found] == rec.decision_ids and len(found) == 3  # none dropped
    assert all(d.prompt_digest == prompt for d in found)
    assert found[0].extra["uses_problems"] == [
        "prompt/suport@production: no alias named 'prompt/suport@production'",
        "embed/typo: no alias named 'embed/typo'"]


def test_an_alias_that_stops_resolving_is_marked_not_dropped(ledger, prompt, server):
    model = ledger_artifacts.register_hosted(ledger.store, "openai:gpt-4o-2024-08-06",
                                             name="gpt-4o").artifact.digest
    with ledger.store.write() as conn:
        ledger_aliases.set_alias(conn, "chat/v1", model)
    client = instrument(client_for(server), ledger, alias="chat/v1")
    with ledger.store.write() as conn:
        ledger_aliases.delete_alias(conn, "chat/v1")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    (d,) = stored(ledger)
    assert (d.alias, d.model_digest) == ("chat/v1", None)
    assert d.extra["uses_problems"][0].startswith("chat/v1: alias 'chat/v1' was deleted at")
