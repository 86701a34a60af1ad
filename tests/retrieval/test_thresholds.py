"""Threshold policies: score files, cuts, calibration and recalibration through the ledger
on every backend, and ``policy.cut`` in the SDK."""

from __future__ import annotations

import random

import pytest

from modelward.errors import NotFoundError, UnknownAliasError, ValidationError
from modelward.ledger import aliases, artifacts
from modelward.ledger import thresholds as ledger_thresholds
from modelward.retrieval import calibration
from modelward.retrieval import thresholds as th
from modelward.timefmt import parse_time

T0 = parse_time("2026-03-01T12:00:00Z")
DAY = 86_400_000_000


def scores_file(tmp_path, name, scores, fmt="jsonl"):
    path = tmp_path / name
    if fmt == "jsonl":
        path.write_text("".join(f'{{"query": "q{i // 10}", "score": {s}}}\n'
                                for i, s in enumerate(scores)))
    elif fmt == "csv":
        path.write_text("query_id,score\n" + "".join(f"q{i // 10},{s}\n"
                                                    for i, s in enumerate(scores)))
    else:
        path.write_text("".join(f"{s}\n" for s in scores))
    return path


def reference(seed: int, shift: float = 0.0, n: int = 1000) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.betavariate(2, 3) + shift, 6) for _ in range(n)]


def test_score_files_in_every_format_give_the_same_scores(tmp_path):
    values = [0.9, 0.1, 0.55, 0.3]
    for fmt in ("jsonl", "csv", "txt"):
        ref = th.read_scores(scores_file(tmp_path, f"s.{fmt}", values, fmt))
        assert ref.scores == values and ref.queries == (0 if fmt == "txt" else 1)
    (tmp_path / "list.json").write_text('[0.9, {"qid": "a", "similarity": 0.1}, 0.55, 0.3]')
    ref = th.read_scores(tmp_path / "list.json")
    assert (ref.scores, ref.queries) == (values, 1)


@pytest.mark.parametrize("text, message", [
    ('{"query": "a", "score": 0.5}\n{"query": "a"}\n', 'line 2: --scores: a record needs'),
    ("0.5\nabc\n", "line 2: --scores: 'abc' is not a score"),
    ("0.5\nnan\n", "line 2: --scores: 'nan' is not a finite score"),
    ("0.5\n", "--scores: 1 scores; calibration needs"),
    ("query,value\na,1\n", "line 1: --scores: the CSV needs a \"score\" column"),
])
def test_bad_score_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "s.txt"
    path.write_text(text)
    with pytest.raises(ValidationError) as exc:
        th.read_scores(path)
    assert exc.value.message.startswith(message)


def test_cuts_let_the_target_share_pass():
    scores = [i / 100 for i in range(100)]  # 0.00 … 0.99
    assert th.cut_for(scores, "pass_rate", 0.35) == 0.65
    assert th.pass_rate(scores, 0.65) == 0.35
    assert th.cut_for(scores, "pass_rate", 1.0) == 0.0
    assert th.cut_for(scores, "quantile", 0.9) == pytest.approx(0.891)
    assert th.cut_for([0.5, 0.5, 0.5, 0.1], "pass_rate", 0.25) == 0.5  # ties all pass
    with pytest.raises(ValidationError, match="--target-pass-rate: 0 is not a pass rate"):
        th.cut_for(scores, "pass_rate", 0)
    with pytest.raises(ValidationError, match="--quantile: 1.0 is not a quantile"):
        th.cut_for(scores, "quantile", 1.0)


def test_policy_cut_keeps_passing_candidates_in_order():
    policy = th.ThresholdPolicy("g", 1, 0.4, "pass_rate", 0.35, {})
    assert policy.cut([0.9, 0.39, 0.4, 0.1, 0.7]) == [0.9, 0.4, 0.7]
    assert policy.cut([("a", 0.5), ("b", 0.2)]) == [("a", 0.5)]
    docs = [{"id": 1, "s": 0.3}, {"id": 2, "s": 0.45}]
    assert policy.cut(docs, key=lambda d: d["s"]) == [{"id": 2, "s": 0.45}]
    assert policy.passes(0.4) and not policy.passes(0.3999)


def _substrate(store):
    e1 = artifacts.register_bytes(store, "embedder", b"e5-v1", name="e5").artifact.digest
    e2 = artifacts.register_bytes(store, "embedder", b"e5-v2", name="e5").artifact.digest
    rr = artifacts.register_bytes(store, "reranker", b"bge-rr", name="bge").artifact.digest
    with store.write() as conn:
        aliases.set_alias(conn, "embed/search", e1, at=T0 - DAY)
    return e1, e2, rr


def test_calibrate_then_recalibrate_keeps_the_pass_rate_and_moves_the_cut(ledger, tmp_path):
    store = ledger.store
    e1, e2, rr = _substrate(store)
    old_scores = scores_file(tmp_path, "v1.jsonl", reference(1))
    c1 = calibration.calibrate(store, "rag/gate", old_scores, mode="pass_rate", target=0.35,
                               embedder="embed/search", reranker=rr, actor="ml@example.com",
                               at=T0)
    p1 = c1.policy
    assert (p1.version, p1.mode, p1.target, p1.previous_cut) == (1, "pass_rate", 0.35, None)
    assert p1.substrate == {"embedder": {"digest": e1, "ref": "embed/search"},
                            "reranker": {"digest": rr, "ref": None}}
    assert c1.pass_rate == 0.35 and (c1.scores, c1.queries) == (1000, 100)
    with store.read() as conn:
        ref = artifacts.get(conn, p1.reference_digest)
    assert (ref.kind, ref.name) == ("dataset", "threshold-reference/rag/gate")
    assert store.blobs.get(p1.reference_digest) == old_scores.read_bytes()
    # the embedder moves; scores on the new substrate run lower
    with store.write() as conn:
        aliases.set_alias(conn, "embed/search", e2, at=T0 + DAY)
    new_scores = scores_file(tmp_path, "v2.jsonl", reference(2, shift=-0.12))
    c2 = calibration.recalibrate(store, "rag/gate", new_scores, reason="e5-v2", at=T0 + 2 * DAY)
    p2 = c2.policy
    assert (p2.version, p2.previous_cut, p2.target, c2.pass_rate) == (2, p1.cut, 0.35, 0.35)
    assert p2.cut < p1.cut - 0.05 and c2.old_cut_pass_rate < 0.25
    assert p2.substrate["embedder"] == {"digest": e2, "ref": "embed/search"}  # re-resolved
    assert p2.substrate["reranker"] == {"digest": rr, "ref": None}
    with store.read() as conn:
        assert [v.version for v in ledger_thresholds.history(conn, "rag/gate")] == [1, 2]
        assert ledger_thresholds.list_latest(conn) == [p2]
    policy = ledger.threshold_policy("rag/gate")
    assert (policy.name, policy.version, policy.cut_value) == ("rag/gate", 2, p2.cut)
    assert policy.cut([p2.cut, p2.cut - 1e-9, 1.0]) == [p2.cut, 1.0]


def test_quantile_policies_and_errors(ledger, tmp_path):
    store = ledger.store
    _e1, _e2, rr = _substrate(store)
    path = scores_file(tmp_path, "s.txt", [i / 10 for i in range(11)], "txt")
    c = calibration.calibrate(store, "q", path, mode="quantile", target=0.8, at=T0)
    assert (c.policy.cut, c.policy.substrate) == (pytest.approx(0.8), {})
    with pytest.raises(ValidationError, match="policy 'q' exists"):
        calibration.calibrate(store, "q", path, mode="quantile", target=0.5)
    with pytest.raises(NotFoundError, match="no threshold policy named 'missing'"):
        calibration.recalibrate(store, "missing", path)
    with pytest.raises(NotFoundError, match="no threshold policy named 'missing'"):
        ledger.threshold_policy("missing")
    with pytest.raises(ValidationError, match="--embedder: .* is a reranker, not an embedder"):
        calibration.calibrate(store, "x", path, mode="pass_rate", target=0.5, embedder=rr)
    with pytest.raises(UnknownAliasError):
        calibration.calibrate(store, "x", path, mode="pass_rate", target=0.5,
                              embedder="embed/none")
    with pytest.raises(ValidationError, match="NAME: not a valid policy name"):
        calibration.calibrate(store, "bad name", path, mode="pass_rate", target=0.5)
