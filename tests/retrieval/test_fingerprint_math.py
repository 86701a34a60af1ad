"""Noise floors and comparisons on real vectors from the local embedders."""

from __future__ import annotations

import numpy as np
import pytest

from modelward.retrieval import fingerprints as fp
from modelward.retrieval.probes import load_probes

from . import embedders

PROBES = load_probes()


def runs(fn, repeats=3):
    return np.array([fn(PROBES.texts, model="m") for _ in range(repeats)], dtype=np.float64)


def compare(a, b):
    return fp.compare(a, b, noise=max(fp.noise_floor(a), fp.noise_floor(b)),
                      probe_ids=PROBES.ids)


def test_noise_floor_is_the_minimum_for_a_bit_stable_embedder_and_measured_otherwise():
    assert fp.noise_floor(runs(embedders.hashing)) == fp.MIN_NOISE
    noisy = fp.noise_floor(runs(embedders.noisy))
    assert 2e-4 < noisy < 5e-3


def test_the_same_embedder_is_same_even_with_hosted_noise():
    base = runs(embedders.hashing)
    same = compare(base, runs(embedders.hashing))
    assert (same.verdict, same.magnitude, same.matrix_correlation) == ("same", 0.0, 1.0)
    noisy = compare(base, runs(embedders.noisy))
    assert noisy.verdict == "same" and 0 < noisy.magnitude < noisy.threshold


def test_a_rotated_basis_keeps_the_geometry_but_is_a_change():
    c = compare(runs(embedders.hashing), runs(embedders.rotated))
    assert c.verdict == "changed"
    assert c.matrix_correlation > 0.99  # the probe-pair similarities are preserved
    assert c.median_cosine < 0.5 and c.magnitude == pytest.approx(1 - c.median_cosine)
    assert len(c.worst) == fp.WORST and c.worst[0][1] == pytest.approx(c.min_cosine, abs=1e-6)


def test_other_dimensions_compare_by_the_similarity_matrix():
    c = compare(runs(embedders.hashing), runs(embedders.wide))
    assert (c.verdict, c.dims, c.median_cosine, c.worst) == ("changed", (48, 96), None, [])
    assert c.magnitude == pytest.approx(1 - c.matrix_correlation) and c.magnitude > 0.1


def test_npy_round_trip_and_spearman_ties():
    v = runs(embedders.hashing, 2)
    assert np.allclose(fp.from_npy(fp.to_npy(v)), v.astype(np.float32))
    assert fp.spearman(np.array([1, 2, 2, 3.0]), np.array([10, 20, 20, 30.0])) == 1.0
    assert fp.spearman(np.array([1, 2, 3.0]), np.array([3, 2, 1.0])) == pytest.approx(-1.0)
    assert fp.spearman(np.array([1, 1, 1.0]), np.array([1, 2, 3.0])) == 0.0


def test_near_one_shows_the_distance_from_one():
    from modelward.retrieval.fingerprints import near_one

    assert [near_one(x) for x in (0.59, 0.98, 0.9998, 0.999982, 1.0, 1 - 1e-12)] == [
        "0.590", "0.980", "0.99980", "0.999982", "1.000", "1 - 1.0e-12"]
