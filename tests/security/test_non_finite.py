"""NaN and infinities never enter the ledger: every place a number comes in (the SDK's
record() and feedback(), CSV and JSON imports, the API, eval scores, threshold targets,
settings) refuses them with an error naming the field, on SQLite and PostgreSQL. orjson
writes NaN as null and PostgreSQL stores a NaN rating, which passes a range check."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from modelward.errors import ConfigError, ValidationError
from modelward.evals.curation.feedback import import_feedback
from modelward.evals.harness.scorers import ScoreError, Scorer
from modelward.ledger import decisions as ledger_decisions
from modelward.ledger import evals as ledger_evals
from modelward.ledger import feedback as ledger_feedback
from modelward.retrieval.thresholds import check_target, parse_scores
from modelward.settings import Setting, coerce
from tests.web import apiclient
from tests.web.apiclient import error

api = apiclient.api  # the fixture

BAD = [math.nan, math.inf, -math.inf]


def stored_decisions(led) -> int:
    with led.store.read() as conn:
        return ledger_decisions.count(conn)


@pytest.mark.parametrize("value", BAD, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("fields, field", [
    (lambda v: {"gate": {"threshold": v, "candidates": 3, "passed": 1}}, "gate.threshold"),
    (lambda v: {"segments": {"tier": "pro", "score": v}}, "segments.score"),
    (lambda v: {"extra": {"probs": [0.1, v]}}, "extra.probs[1]"),
], ids=["threshold", "segment", "extra"])
def test_record_refuses_non_finite_numbers(ledger, fields, field, value):
    with pytest.raises(ValidationError) as exc:
        ledger.record(subject="u1", **fields(value))
    assert exc.value.field == field
    ledger.flush()
    assert stored_decisions(ledger) == 0


@pytest.mark.parametrize("value", BAD, ids=["nan", "inf", "-inf"])
def test_feedback_ratings_refuse_non_finite_numbers(ledger, value):
    did = ledger.record(subject="u1")
    ledger.flush()
    with pytest.raises(ValidationError, match="rating: expected a finite number") as exc:
        ledger.feedback(did, surface="production", author_kind="customer", rating=value)
    assert exc.value.field == "rating"
    with pytest.raises(ValidationError, match="meta.x: NaN and infinity"):
        ledger.feedback(did, surface="production", author_kind="customer", meta={"x": value})
    with ledger.store.read() as conn:
        assert ledger_feedback.list_feedback(conn) == []


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_csv_ratings_refuse_non_finite_numbers(ledger, cell):
    did = ledger.record(subject="u1")
    ledger.flush()
    data = (f"decision_id,surface,author_kind,rating\n{did},production,customer,1\n"
            f"{did},production,customer,{cell}\n").encode()
    with pytest.raises(ValidationError) as exc:
        import_feedback(ledger.store, data, name="fb.csv")
    assert exc.value.message.startswith("line 3: rating: expected a finite number")
    with ledger.store.read() as conn:
        assert ledger_feedback.list_feedback(conn) == []  # not even line 2


def test_eval_scores_refuse_non_finite_numbers(ledger):
    scorer = Scorer("custom", lambda output, item: math.nan)
    with pytest.raises(ScoreError, match="returned nan"):
        scorer.score("out", {})
    with ledger.store.write() as conn:
        run = ledger_evals.start_run(conn, evalset_digest="sha256:" + "0" * 64,
                                     prompt_alias=None, prompt_digest=None, model_alias=None,
                                     model_digest=None, runner=None, harness_version="t",
                                     scorers=["custom"])
    result = ledger_evals.ItemResult(0, "i1", None, None, "out", None, {"custom": math.inf},
                                     True, 1.0, None)
    with pytest.raises(ValidationError, match="scores.custom: item .i1.: NaN and infinity are not scores"):
        with ledger.store.write() as conn:
            ledger_evals.add_results(conn, run, [result])
    with ledger.store.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM eval_results")).scalar() == 0


def test_threshold_targets_scores_and_settings_refuse_non_finite_numbers():
    for value in BAD:
        with pytest.raises(ValidationError, match="--target-pass-rate"):
            check_target("pass_rate", value)
        with pytest.raises(ValidationError, match="--quantile"):
            check_target("quantile", value)
    with pytest.raises(ValidationError, match="line 2"):
        parse_scores("0.5\nnan\n0.7\n")
    with pytest.raises(ValidationError, match="line 3"):
        parse_scores("score\n0.5\ninf\n", suffix=".csv")
    ratio = Setting("ratio", "float", None, "a float setting")
    assert coerce(ratio, "0.25", "MODELWARD_RATIO") == 0.25
    for text in ("nan", "inf", "-inf", "1e999"):
        with pytest.raises(ConfigError, match="ratio"):
            coerce(ratio, text, "MODELWARD_RATIO")


@pytest.mark.parametrize("body", [
    b'[{"subject": "u1", "gate": {"threshold": NaN}}]',
    b'[{"subject": "u1", "gate": {"threshold": 1e999}}]',
    b'[{"subject": "u1", "segments": {"x": -Infinity}}]',
], ids=["NaN", "1e999", "-Infinity"])
def test_the_api_refuses_non_finite_numbers(api, body):
    resp = api.post("/api/v1/decisions", content=body,
                    headers={"Content-Type": "application/json"})
    err = error(resp, 422)
    assert err["field"] == "body" and "not valid JSON" in err["message"]
    with api.store.read() as conn:
        assert ledger_decisions.count(conn) == 0
