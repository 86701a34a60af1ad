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
