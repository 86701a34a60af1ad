"""``fingerprint run`` and ``compare`` through the ledger on every backend: baselines,
epochs, stored vectors, and the OpenAI-compatible URL runner against a real local server."""

from __future__ import annotations

import numpy as np
import pytest

from modelward.errors import ModelwardError, ValidationError
from modelward.ledger import aliases, artifacts
from modelward.ledger import fingerprints as ledger_fp
from modelward.retrieval import fingerprinting
from modelward.retrieval import fingerprints as fp
from modelward.retrieval.embedders import parse_embedder_runner
from modelward.retrieval.probes import load_probes
from modelward.timefmt import parse_time

T0 = parse_time("2026-03-01T06:00:00Z")
DAY = 86_400_000_000
PROBES = load_probes()
MOD = "tests.retrieval.embedders"


def hosted_embedder(store, alias="embed/search", hosted="acme:embed-small"):
    digest = artifacts.register_hosted(store, hosted, name="embed-small", kind="embedder",
                                       at=T0 - DAY).artifact.digest
    with store.write() as conn:
        aliases.set_alias(conn, alias, digest, at=T0 - DAY)
    return digest


def run(store, fn, at, alias="embed/search", probes=PROBES, repeats=3):
    return fingerprinting.run(store, alias, parse_embedder_runner(f"{MOD}:{fn}"), probes,
                              repeats=repeats, at=at)


def test_first_run_is_the_baseline_and_stores_its_vectors(ledger):
    store = ledger.store
    digest = hosted_embedder(store)
    first = run(store, "hashing", T0)
    r = first.run
    assert (r.epoch, r.verdict, r.baseline_id, r.magnitude) == (1, "baseline", None, None)
    assert (r.embedder_digest, r.repeats, r.dims, r.noise_floor) == (digest, 3, 48, fp.MIN_NOISE)
    assert r.probes_digest == PROBES.digest and first.comparison is None
    vectors = fp.from_npy(store.blobs.get(r.vectors_digest))
    assert vectors.shape == (3, len(PROBES), 48)
    with store.read() as conn:
        assert ledger_fp.history(conn, "embed/search") == [r]


def test_runs_compare_with_the_epoch_baseline_and_a_change_opens_an_epoch(ledger):
    store = ledger.store
    hosted_embedder(store)
    base = run(store, "hashing", T0).run
    # one and two baseline runs: too few to measure the noise between runs
    early = [run(store, "noisy", T0 + d * DAY) for d in (1, 2)]
    for r in early:
        assert (r.run.verdict, r.run.epoch, r.run.baseline_id) == ("inconclusive", 1, base.id)
        assert r.comparison.method == "too-few-runs"
        assert 0 < r.run.magnitude < r.comparison.threshold == fp.GROSS
    assert early[1].run.summary["baseline_runs"] == [base.id, early[0].run.id]
    same = run(store, "noisy", T0 + 3 * DAY)
    assert (same.run.verdict, same.run.epoch, same.run.baseline_id) == ("same", 1, base.id)
    assert same.comparison.baseline_runs == 3 and same.comparison.method == "between-runs"
    assert 0 <= same.run.magnitude < same.comparison.threshold < 0.01
    changed = run(store, "rotated", T0 + 4 * DAY)
    assert (changed.run.verdict, changed.run.epoch, changed.run.baseline_id) == (
        "changed", 2, base.id)
    assert changed.run.summary["comparison"]["median_cosine"] < 0.5
    # later runs are judged against the new epoch's runs, the first the changed run
    after = run(store, "rotated", T0 + 5 * DAY)
    assert (after.run.verdict, after.run.epoch, after.run.baseline_id) == (
        "inconclusive", 2, changed.run.id)
    with store.read() as conn:
        assert [(f.epoch, f.verdict) for f in ledger_fp.history(conn, "embed/search")] == [
            (1, "baseline"), (1, "inconclusive"), (1, "inconclusive"), (1, "same"),
            (2, "changed"), (2, "inconclusive")]
    again = fingerprinting.compare_latest(store, "embed/search")
    assert again.baseline.id == changed.run.id
    assert again.comparison.to_dict() == after.comparison.to_dict()


def test_compare_recomputes_a_changed_run_from_the_stored_vectors(ledger):
    store = ledger.store
    hosted_embedder(store)
    run(store, "hashing", T0)
    changed = run(store, "wide", T0 + DAY)
    result = fingerprinting.compare_latest(store, "embed/search")
    assert result.comparison.to_dict() == changed.comparison.to_dict()
    assert result.comparison.dims == (48, 96) and len(result.probes) == len(PROBES)


def test_the_url_runner_posts_embeddings_and_keeps_the_vendor_model_id(ledger, server):
    store = ledger.store
    hosted_embedder(store)
    runner = parse_embedder_runner(server.url)
    first = fingerprinting.run(store, "embed/search", runner, PROBES, repeats=2, at=T0)
    assert first.run.vendor_model_id == "text-embedding-local-001"
    assert [(r["path"], r["model"], len(r["input"])) for r in server.requests] == [
        ("/v1/embeddings", "embed-small", len(PROBES))] * 2
    direct = np.array(fp.from_npy(store.blobs.get(first.run.vectors_digest))[0])
    from .embedders import hashing
    assert np.allclose(direct, np.array(hashing(PROBES.texts, model="x"), dtype=np.float32))
    server.rotate, server.served_model = True, "text-embedding-local-002"
    second = fingerprinting.run(store, "embed/search", runner, PROBES, repeats=2, at=T0 + DAY)
    assert (second.run.verdict, second.run.epoch, second.run.vendor_model_id) == (
        "changed", 2, "text-embedding-local-002")


def test_runner_failures_and_bad_input_are_clear_errors(ledger, server, tmp_path):
    store = ledger.store
    hosted_embedder(store)
    with pytest.raises(ModelwardError, match="returned 2 vectors for 3 texts|returned"):
        run(store, "broken", T0)
    bad_url = parse_embedder_runner(server.url.replace("/v1", "/nope"))
    with pytest.raises(ModelwardError, match=r"POST http://127\.0\.0\.1:\d+/nope/embeddings "
                                             r"returned HTTP 404"):
        fingerprinting.run(store, "embed/search", bad_url, PROBES, at=T0)
    with pytest.raises(ValidationError, match="--repeats: 1 repeats"):
        run(store, "hashing", T0, repeats=1)
    with pytest.raises(ValidationError, match="not an embedding runner"):
        parse_embedder_runner("not a runner")
    model = artifacts.register_bytes(store, "model", b"weights", name="chat").artifact.digest
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", model, at=T0 - DAY)
    with pytest.raises(ValidationError, match="chat/v1 points at a model, not an embedder"):
        run(store, "hashing", T0, alias="chat/v1")
    run(store, "hashing", T0)
    other = tmp_path / "p.txt"
    other.write_text("a b\nc d\ne f\n")
    with pytest.raises(ValidationError, match="taken on other probes"):
        run(store, "hashing", T0 + DAY, probes=load_probes(other))
    with pytest.raises(ModelwardError, match="has no fingerprint runs"):
        fingerprinting.compare_latest(store, "embed/other")
