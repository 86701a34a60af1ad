"""MW102 unretained-artifact."""

import sqlalchemy as sa

from modelward.ledger import artifacts
from modelward.ledger.schema import decisions

from .builders import DAY, HOUR, NOW, T0, put, put_hosted, record


def _named_by(ledger, digest):
    d = decisions.c
    with ledger.store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).where(sa.or_(
            d.model_digest == digest, d.prompt_digest == digest, d.embedder_digest == digest),
            d.at >= NOW - 400 * DAY)).scalar()


def test_MW102_fires_when_a_referenced_payload_is_missing(ledger, fleet, findings):
    ledger.store.blobs.delete(fleet["v3"])
    [f] = findings("MW102")
    assert f.subject == fleet["v3"] and f.severity == "error"
    assert f.evidence["problem"] == "missing" and f.evidence["decisions"] == _named_by(ledger, fleet["v3"])
    assert f.evidence["name"] == "chat" and f.evidence["version"] == "v3"
    assert f.message.startswith(f"model chat@v3 ({fleet['v3'][:19]}…) is named by ")
    assert f.message.endswith("but its payload is missing (the blob is not in the store)")
    assert f.evidence["detail"] == "the blob is not in the store"


def test_MW102_fires_when_a_payload_is_corrupt_or_a_directory_file_is_gone(ledger, fleet, findings):
    # same size, other bytes: only re-hashing notices
    ledger.store.blobs.path_of(fleet["p37"]).write_bytes(b"You are a support agent. v99")
    with ledger.store.read() as conn:
        v4 = artifacts.get(conn, fleet["v4"])
    file_blob = artifacts.blob_digests(ledger.store, v4)[1]
    ledger.store.blobs.delete(file_blob)
    found = {f.subject: f.evidence["problem"] for f in findings("MW102")}
    assert found == {fleet["p37"]: "corrupt", fleet["v4"]: "missing"}
    # without re-hashing only presence and size are checked: the prompt goes unseen
    assert {f.subject for f in findings("MW102", verify=False)} == {fleet["v4"]}
    ledger.store.blobs.path_of(fleet["p37"]).write_bytes(b"short")
    assert {f.subject for f in findings("MW102", verify=False)} == {fleet["p37"], fleet["v4"]}


def test_MW102_fires_for_unstored_payloads_and_retired_hosted_models(ledger, fleet, findings):
    unstored = artifacts.register_bytes(ledger.store, "reranker", b"rr", name="rr",
                                        store_payload=False).artifact.digest
    retired = put_hosted(ledger.store, "openai:gpt-4-0613", "gpt-4", retires_at=NOW - DAY)
    record(ledger.store, [dict(at=T0 + HOUR, model_digest=retired, reranker_digest=unstored)])
    found = {f.subject: f for f in findings("MW102")}
    assert found[unstored].evidence["problem"] == "not-stored"
    assert found[retired].evidence["problem"] == "retired"
    assert found[retired].message.endswith(
        "but its vendor retired openai:gpt-4-0613 on 2026-03-02T12:00:00Z")


def test_MW102_ignores_decisions_outside_the_retention_window(ledger, fleet, findings, settings_for):
    gone = put(ledger.store, "model", b"weights-v2", "chat", "v2")
    record(ledger.store, [dict(at=T0 - 300 * DAY, model_digest=gone)])
    ledger.store.blobs.delete(gone)
    assert [f.subject for f in findings("MW102")] == [gone]
    assert findings("MW102", since=T0 - HOUR) == []
    assert findings("MW102", settings=settings_for(retention="200d")) == []


def test_MW102_clean_on_a_realistic_ledger(fleet, findings):
    # the old model's payload was collected, but its decisions are past retention
    assert findings("MW102") == []


def test_MW102_names_the_first_and_last_decision_not_the_window_start(ledger, fleet, findings):
    """The window opens 400 days back; the message dates the decisions themselves."""
    lost = put(ledger.store, "model", b"weights-lost", "chat", "lost")
    record(ledger.store, [dict(at=T0 + h * HOUR, model_digest=lost) for h in (3, 1, 7)])
    ledger.store.blobs.delete(lost)
    [f] = [f for f in findings("MW102") if f.subject == lost]
    assert f.message == (
        f"model chat@lost ({lost[:19]}…) is named by 3 decisions, the first at "
        "2026-03-01T13:00:00Z and the last at 2026-03-01T19:00:00Z, but its payload is "
        "missing (the blob is not in the store)")
    assert (f.evidence["first_seen"], f.evidence["last_seen"], f.evidence["window_start"]) == (
        "2026-03-01T13:00:00Z", "2026-03-01T19:00:00Z", "2025-01-27T12:00:00Z")
    # a window that starts after the first decision counts and dates only what is inside it
    [f] = [f for f in findings("MW102", since=T0 + 2 * HOUR) if f.subject == lost]
    assert "is named by 2 decisions, the first at 2026-03-01T15:00:00Z and the last at " \
        "2026-03-01T19:00:00Z, but" in f.message
    # one decision: one time
    [f] = [f for f in findings("MW102", since=T0 + 5 * HOUR) if f.subject == lost]
    assert "is named by 1 decision, at 2026-03-01T19:00:00Z, but" in f.message
