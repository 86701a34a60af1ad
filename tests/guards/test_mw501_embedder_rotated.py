"""MW501 embedder-rotated, on fingerprints taken with real local embedders."""

from __future__ import annotations

from modelward.ledger import artifacts
from modelward.retrieval import fingerprinting
from modelward.retrieval.embedders import parse_embedder_runner
from modelward.retrieval.fingerprints import basis, near_one
from modelward.retrieval.probes import load_probes

from .builders import DAY, HOUR, T0, move, put

PROBES = load_probes()


def fingerprint(store, alias, fn, at):
    runner = parse_embedder_runner(f"tests.retrieval.embedders:{fn}")
    return fingerprinting.run(store, alias, runner, PROBES, repeats=2, at=at).run


def hosted(store, alias="embed/hosted"):
    digest = artifacts.register_hosted(store, "acme:embed-small", name="embed-small",
                                       kind="embedder", at=T0 - DAY).artifact.digest
    move(store, alias, digest, T0 - DAY)
    return digest


def test_MW501_fires_when_a_hosted_embedder_rotates_silently(ledger, fleet, findings):
    digest = hosted(ledger.store)
    first = fingerprint(ledger.store, "embed/hosted", "hashing", T0 + HOUR)
    same = fingerprint(ledger.store, "embed/hosted", "noisy", T0 + 2 * HOUR)
    changed = fingerprint(ledger.store, "embed/hosted", "rotated", T0 + 5 * HOUR)
    # one baseline run before it: too few for the noise between runs, but a rotation is
    # beyond the gross bound
    assert (same.verdict, changed.verdict) == ("inconclusive", "changed")
    [f] = findings("MW501")
    cmp = changed.summary["comparison"]
    assert (f.subject, f.severity) == ("embed/hosted", "warning")
    assert f.evidence == {
        "alias": "embed/hosted", "run_id": changed.id, "at": "2026-03-01T17:00:00Z",
        "previous_run_id": same.id, "previous_at": "2026-03-01T14:00:00Z",
        "digest": digest, "previous_digest": digest, "magnitude": changed.magnitude,
        "threshold": cmp["threshold"], "median_cosine": cmp["median_cosine"],
        "matrix_correlation": cmp["matrix_correlation"], "noise_floor": changed.noise_floor,
        "epoch": 2, "vendor_model_id": None}
    assert f.message == (
        "embed/hosted's fingerprint changed at 2026-03-01T17:00:00Z (magnitude "
        f"{changed.magnitude:.2g}, threshold {cmp['threshold']:.1e}; median per-probe cosine "
        f"{near_one(cmp['median_cosine'])}, matrix correlation "
        f"{near_one(cmp['matrix_correlation'])}; {basis(cmp)}) "
        "with no alias move or embedder registration since the run of "
        "2026-03-01T14:00:00Z; epoch 1 -> 2")
    assert first.verdict == "baseline"
    # outside the check window it is not judged
    assert findings("MW501", since=T0 + 6 * HOUR) == []


def test_MW501_fires_on_a_small_update_against_the_noise_between_runs(ledger, fleet,
                                                                       findings):
    hosted(ledger.store)
    runs = [fingerprint(ledger.store, "embed/hosted", "noisy", T0 + h * HOUR)
            for h in (1, 2, 3, 4)]
    assert [r.verdict for r in runs] == ["baseline", "inconclusive", "inconclusive", "same"]
    assert findings("MW501") == []
    changed = fingerprint(ledger.store, "embed/hosted", "nudged", T0 + 5 * HOUR)
    cmp = changed.summary["comparison"]
    assert (changed.verdict, cmp["method"], cmp["baseline_runs"]) == (
        "changed", "between-runs", 4)
    assert 0.95 < cmp["median_cosine"] < 0.999 and cmp["threshold"] < 1 - cmp["median_cosine"]
    [f] = findings("MW501")
    assert (f"threshold at a 1% false-alarm rate from the noise between 4 baseline runs; "
            f"smallest detectable change: median per-probe cosine "
            f"{near_one(1 - cmp['threshold'])}") in f.message


def test_MW501_fires_for_a_change_of_dimensions(ledger, fleet, findings):
    hosted(ledger.store)
    fingerprint(ledger.store, "embed/hosted", "hashing", T0 + HOUR)
    fingerprint(ledger.store, "embed/hosted", "wide", T0 + 2 * HOUR)
    [f] = findings("MW501")
    assert f.evidence["median_cosine"] is None and "dimensions differ" in f.message


def test_MW501_clean_when_the_change_is_an_alias_move_or_a_registration(ledger, fleet,
                                                                        findings):
    store = ledger.store
    hosted(store)
    # the fleet's embedder: fingerprinted twice, unchanged
    fingerprint(store, "embed/search", "hashing", T0 + HOUR)
    fingerprint(store, "embed/search", "noisy", T0 + 3 * HOUR)
    # an alias moved to a new embedder between the runs explains the change
    fingerprint(store, "embed/hosted", "hashing", T0 + HOUR)
    new = put(store, "embedder", b"embedder-v2", "embed-large", "2", at=T0 + HOUR)
    move(store, "embed/hosted", new, T0 + 2 * HOUR)
    moved = fingerprint(store, "embed/hosted", "rotated", T0 + 3 * HOUR)
    # a newly registered version of the same embedder explains the next one
    put(store, "embedder", b"embedder-v3", "embed-large", "3", at=T0 + 4 * HOUR)
    registered = fingerprint(store, "embed/hosted", "hashing", T0 + 5 * HOUR)
    assert (moved.verdict, registered.verdict) == ("changed", "changed")
    assert findings("MW501") == []
    # an inconclusive run (too few baseline runs) is never a finding
    assert fingerprint(store, "embed/search", "noisy", T0 + 4 * HOUR).verdict == "inconclusive"
    # the same change with the registration before the previous run still fires
    fingerprint(store, "embed/hosted", "rotated", T0 + 6 * HOUR)
    [f] = findings("MW501")
    assert f.evidence["at"] == "2026-03-01T18:00:00Z" and f.evidence["epoch"] == 4
