"""MW404 substrate-shift: an embedder's fingerprint epoch, a vendor model id or a model that
changed under an experiment."""

from __future__ import annotations

from modelward.ledger.artifacts import register_bytes

from ..rollout.world import DAY, MIN, T0, create, expose, fingerprint


def _treated(exp, n):
    return [(f"u-{i}", exp.assign(f"u-{i}")) for i in range(n)]


def test_MW404_fires_when_the_embedder_fingerprint_changes_mid_experiment(ledger, findings):
    store = ledger.store
    emb = register_bytes(store, "embedder", b"vendor-embedder", name="embed").artifact.digest
    fingerprint(store, emb, T0 - DAY, 1)
    fingerprint(store, emb, T0 + DAY // 2, 2)  # the vendor changed the vectors
    exp = create(store, "rag-rerank", "r:1", arms="control=1,treatment=1")
    pairs = _treated(exp, 2000)

    def metric(i, s, arm):  # treatment helps before the change, hurts after
        after = T0 + i * MIN >= T0 + DAY // 2
        return 0.5 + (0.1 if arm == "treatment" else 0) * (-1 if after else 1) + (i % 7) / 100

    expose(store, "rag-rerank", pairs, step=MIN, embedder_digest=emb, metric=metric)
    (f,) = findings("MW404")
    assert (f.severity, f.subject) == ("warning", "rag-rerank")
    assert f.evidence["varying"] == ["fingerprint_epoch"]
    assert [r["exposures"] for r in f.evidence["regimes"]] == [720, 1280]
    assert [r["substrate"]["fingerprint_epoch"] for r in f.evidence["regimes"]] == [1, 2]
    assert f.message == (
        "rag-rerank spans 2 substrate regimes (fingerprint_epoch changed): R1 720 exposures "
        "from 2026-03-01T12:00:00Z, R2 1,280 exposures from 2026-03-02T00:00:00Z; treatment "
        "effect differs by regime (Cochran's Q 1.16e+04, p = 0)")
    assert f.evidence["interactions"][0]["p_value"] < 1e-10
    assert findings("MW404", min_exposures=1000) == []


def test_MW404_clean_for_a_model_ab_test_on_a_steady_substrate(ledger, fleet, findings):
    store = ledger.store
    a = register_bytes(store, "model", b"model-a", name="chat", version="a").artifact.digest
    b = register_bytes(store, "model", b"model-b", name="chat", version="b").artifact.digest
    emb = register_bytes(store, "embedder", b"e5", name="embed").artifact.digest
    fingerprint(store, emb, T0 - DAY, 1)
    exp = create(store, "model-ab", "m:1", arms="control=1,treatment=1")
    expose(store, "model-ab", _treated(exp, 1000), embedder_digest=emb,
           model_digest=lambda i, s, arm: a if arm == "control" else b,
           vendor_model_id="gpt-4o-2024-08-06")
    assert findings("MW404") == []  # the model differs by arm by design: one regime


def test_MW404_fires_when_one_arms_model_or_the_vendor_id_changes(ledger, findings):
    store = ledger.store
    a = register_bytes(store, "model", b"model-a", name="chat", version="a").artifact.digest
    b = register_bytes(store, "model", b"model-b", name="chat", version="b").artifact.digest
    b2 = register_bytes(store, "model", b"model-b2", name="chat", version="b2").artifact.digest
    exp = create(store, "model-ab", "m:1", arms="control=1,treatment=1")
    expose(store, "model-ab", _treated(exp, 1000),
           model_digest=lambda i, s, arm: a if arm == "control" else (b if i < 500 else b2))
    (f,) = findings("MW404")
    assert f.evidence["varying"] == ["model_digest"]
    create(store, "hosted", "h:1")
    expose(store, "hosted", _treated(exp, 300),
           vendor_model_id=lambda i, s, arm: "gpt-4o-2024-08-06" if i < 100 else "gpt-4o-2024-11-20")
    got = {f.subject: f for f in findings("MW404")}
    assert got["hosted"].evidence["varying"] == ["vendor_model_id"]
    assert [r["exposures"] for r in got["hosted"].evidence["regimes"]] == [100, 200]
