"""MW101 unattributed-decision."""

from modelward.digest import of_bytes
from modelward.display import short_digest as short

from .builders import HOUR, MIN, T0, put, record


def test_MW101_fires_for_aliases_without_their_digest(ledger, fleet, findings):
    legacy = record(ledger.store, [dict(at=T0 + HOUR + i * MIN, alias="chat/v1", process="legacy")
                                   for i in range(4)])
    # a prompt alias is judged by prompt_digest, even when a model digest is present
    record(ledger.store, [dict(at=T0 + 2 * HOUR, alias="prompt/support@production",
                               model_digest=fleet["v3"])])
    record(ledger.store, [dict(at=T0 + 3 * HOUR, alias="legacy/v0")])
    found = findings("MW101")
    assert [(f.subject, f.evidence["field"], f.evidence["decisions"]) for f in found] == [
        ("chat/v1", "model_digest", 4),
        ("legacy/v0", "model_digest", 1),
        ("prompt/support@production", "prompt_digest", 1),
    ]
    chat = found[0]
    assert chat.severity == "error"
    assert chat.message == ("alias chat/v1 is named without a model_digest by 4 decisions "
                            "(first 2026-03-01T13:00:00Z, last 2026-03-01T13:03:00Z)")
    assert chat.evidence["examples"] == legacy[:3]
    assert chat.evidence["alias_known"] is True
    assert found[1].evidence["alias_known"] is False
    assert "(the registry has no such alias)" in found[1].message


def test_MW101_fires_for_digests_nobody_registered(ledger, fleet, findings):
    ghost_prompt = of_bytes(b"prompt v99")
    ghost_reranker = of_bytes(b"reranker x")
    ids = record(ledger.store, [dict(at=T0 + i * MIN, model_digest=fleet["v3"],
                                     prompt_digest=ghost_prompt, process="w") for i in range(5)]
                 + [dict(at=T0 + HOUR, reranker_digest=ghost_reranker, process="w")])
    found = findings("MW101", examples=2)
    by_field = {f.evidence["field"]: f for f in found}
    assert sorted(by_field) == ["prompt_digest", "reranker_digest"]
    p = by_field["prompt_digest"]
    assert p.subject == ghost_prompt and p.evidence["decisions"] == 5
    assert p.evidence["examples"] == ids[:2]
    assert p.message == (f"prompt_digest {short(ghost_prompt)} is not a registered artifact but "
                         "is named by 5 decisions (first 2026-03-01T12:00:00Z, "
                         "last 2026-03-01T12:04:00Z)")
    assert by_field["reranker_digest"].evidence["decisions"] == 1
    fingerprint = p.fingerprint
    # more decisions change the count, not the fingerprint a suppression keys on
    record(ledger.store, [dict(at=T0 + 2 * HOUR, prompt_digest=ghost_prompt)])
    again = [f for f in findings("MW101") if f.subject == ghost_prompt][0]
    assert again.evidence["decisions"] == 6 and again.fingerprint == fingerprint
    # registering the content makes the recorded decisions attributable
    assert put(ledger.store, "prompt", b"prompt v99", "support", "99") == ghost_prompt
    assert [f.subject for f in findings("MW101")] == [ghost_reranker]


def test_MW101_only_counts_decisions_in_the_window(ledger, fleet, findings):
    record(ledger.store, [dict(at=T0 - 3 * HOUR, alias="chat/v1")])
    assert len(findings("MW101")) == 1
    assert findings("MW101", since=T0) == []


def test_MW101_clean_on_a_realistic_ledger(fleet, findings):
    assert findings("MW101") == []
