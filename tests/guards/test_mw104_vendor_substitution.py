"""MW104 vendor-substitution."""

from .builders import HOUR, MIN, T0, move, put, put_hosted, record


def _series(digest, ids_and_fps, start=T0, step=10 * MIN):
    return [dict(at=start + i * step, model_digest=digest, alias="chat/hosted", process="api-2",
                 vendor_model_id=vid, vendor_fingerprint=fp)
            for i, (vid, fp) in enumerate(ids_and_fps)]


def test_MW104_fires_when_the_vendor_swaps_the_model_silently(ledger, fleet, findings):
    claude = put_hosted(ledger.store, "anthropic:claude-sonnet", "claude", at=T0 - HOUR)
    ids = record(ledger.store, _series(claude, [("claude-sonnet-4-0", "f1")] * 3
                                       + [("claude-sonnet-4-5", "f1")] * 2))
    [f] = findings("MW104")
    assert f.subject == "anthropic:claude-sonnet" and f.severity == "warning"
    assert f.evidence == {
        "digest": claude, "hosted_id": "anthropic:claude-sonnet", "field": "vendor_model_id",
        "old": "claude-sonnet-4-0", "new": "claude-sonnet-4-5",
        "changed_at": "2026-03-01T12:30:00Z",
        "last_before": {"id": ids[2], "at": "2026-03-01T12:20:00Z"},
        "first_after": {"id": ids[3], "at": "2026-03-01T12:30:00Z"},
        "changes": 1, "decisions_old": 3, "decisions_new": 2}
    assert f.message == (f"anthropic:claude-sonnet ({claude[:19]}…) reported vendor_model_id "
                         "claude-sonnet-4-0, then claude-sonnet-4-5 from 2026-03-01T12:30:00Z "
                         "with no registry event in between")


def test_MW104_fires_once_per_direction_when_traffic_flaps(ledger, fleet, findings):
    m = put_hosted(ledger.store, "acme:chat", "acme-chat", at=T0 - HOUR)
    record(ledger.store, _series(m, [("a", None), ("b", None), ("a", None), ("b", None),
                                     (None, None), ("b", None)]))
    found = {(f.evidence["old"], f.evidence["new"]): f.evidence["changes"]
             for f in findings("MW104")}
    assert found == {("a", "b"): 2, ("b", "a"): 1}


def test_MW104_fingerprint_changes_only_when_asked(ledger, fleet, findings):
    m = put_hosted(ledger.store, "openai:gpt-4o-mini", "mini", at=T0 - HOUR)
    record(ledger.store, _series(m, [("gpt-4o-mini-2024-07-18", "fp_1")] * 2
                                 + [("gpt-4o-mini-2024-07-18", "fp_2")] * 2))
    assert findings("MW104") == []
    [f] = findings("MW104", fingerprint=True)
    assert (f.evidence["field"], f.evidence["old"], f.evidence["new"]) == (
        "vendor_fingerprint", "fp_1", "fp_2")


def test_MW104_a_registry_event_in_between_acknowledges_the_change(ledger, fleet, findings):
    m = put_hosted(ledger.store, "acme:chat", "acme-chat", at=T0 - HOUR)
    other = put_hosted(ledger.store, "acme:chat-old", "acme-chat-old", at=T0 - HOUR)
    move(ledger.store, "acme/prod", other, T0 - HOUR)
    # change 1 acknowledged by moving an alias onto the digest, change 2 by a child artifact
    # (an adapter on it), change 3 by registering the vendor's new model id
    record(ledger.store, _series(m, [("v1", None), ("v2", None)], start=T0))
    move(ledger.store, "acme/prod", m, T0 + 5 * MIN)
    record(ledger.store, _series(m, [("v3", None)], start=T0 + HOUR))
    put(ledger.store, "adapter", b"lora", "acme-lora", parents=[m], at=T0 + HOUR - MIN)
    record(ledger.store, _series(m, [("v4", None)], start=T0 + 2 * HOUR))
    put_hosted(ledger.store, "acme:v4", "acme", at=T0 + 2 * HOUR - MIN)
    assert findings("MW104") == []
    # the same change with the event outside the gap still fires
    record(ledger.store, _series(m, [("v5", None)], start=T0 + 3 * HOUR))
    [f] = findings("MW104")
    assert (f.evidence["old"], f.evidence["new"]) == ("v4", "v5")


def test_MW104_ignores_models_held_in_our_blob_store(ledger, fleet, findings):
    record(ledger.store, _series(fleet["v3"], [("x", None), ("y", None)]))
    assert findings("MW104") == []


def test_MW104_clean_on_a_realistic_ledger(fleet, findings):
    # the fleet's hosted model changed snapshot right after the team registered it, and its
    # fingerprint changed only together with the model id
    assert findings("MW104") == []
    assert findings("MW104", fingerprint=True) == []


def test_MW104_fires_when_a_pinned_snapshot_was_served_as_another(ledger, fleet, findings):
    pinned = put_hosted(ledger.store, "openai:gpt-4o-2024-08-06", "gpt-4o", at=T0 - HOUR)
    record(ledger.store, _series(pinned, [("gpt-4o-2024-11-20", None)] * 3))
    [f] = findings("MW104")
    assert f.subject == "openai:gpt-4o-2024-08-06" and f.severity == "warning"
    assert (f.evidence["kind"], f.evidence["served"], f.evidence["decisions"]) == (
        "served-other", "gpt-4o-2024-11-20", 3)
    assert f.message.startswith(f"openai:gpt-4o-2024-08-06 ({pinned[:19]}…) is recorded, but 3 "
                                "decisions report the vendor served gpt-4o-2024-11-20 (first ")
    assert "register --hosted" in f.fix


def test_MW104_watches_hosted_embedders_too(ledger, fleet, findings):
    """An embeddings decision's reported id is its embedder's: a pinned embedder served as
    another fires, and a floating one changing silently fires."""
    pinned = put_hosted(ledger.store, "google:text-embedding-004", "te4", kind="embedder",
                        at=T0 - HOUR)
    floating = put_hosted(ledger.store, "openai:text-embedding-3-small", "te3", kind="embedder",
                          at=T0 - HOUR)
    record(ledger.store, [dict(at=T0 + i * MIN, embedder_digest=pinned,
                               vendor_model_id="text-embedding-005") for i in range(2)]
           + [dict(at=T0 + i * MIN, embedder_digest=floating,
                   vendor_model_id="text-embedding-3-small" if i < 3 else "te3-2026")
              for i in range(5)]
           # a chat decision that also names an embedder: its id is the chat model's
           + [dict(at=T0, embedder_digest=pinned, model_digest=fleet["v3"],
                   vendor_model_id="something-else")])
    found = {(f.subject, f.evidence.get("kind", "change")) for f in findings("MW104")}
    assert found == {("google:text-embedding-004", "served-other"),
                     ("openai:text-embedding-3-small", "change")}


def test_MW104_clean_when_the_pinned_snapshot_is_what_was_served(ledger, fleet, findings):
    pinned = put_hosted(ledger.store, "openai:gpt-4o-2024-08-06", "gpt-4o", at=T0 - HOUR)
    google = put_hosted(ledger.store, "google:text-embedding-004", "te4", kind="embedder",
                        at=T0 - HOUR)
    odd = put_hosted(ledger.store, "acme:chat-2025-01-01", "acme", at=T0 - HOUR,
                     meta={"served_as": ["acme-prod-7"]})
    record(ledger.store, _series(pinned, [("gpt-4o-2024-08-06", None)] * 2)
           + _series(odd, [("acme-prod-7", None)] * 2)
           + [dict(at=T0, embedder_digest=google, vendor_model_id="models/text-embedding-004")])
    assert findings("MW104") == []
