"""Canonical values round-trip on every backend: what is recorded is what reads back, and
the chain verifies afterwards. −0.0 is recorded as 0.0 (SQLite stores it so), NaN and ±inf
are refused, strings are NFC, times are integer microseconds."""

from __future__ import annotations

import itertools
import math
import unicodedata

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelward
from modelward.errors import ValidationError
from modelward.ledger import aliases, artifacts, chain, decisions, experiments, people, thresholds
from modelward.ledger import feedback as ledger_feedback
from modelward.ledger.thresholds import PolicyVersion
from modelward.timefmt import MAX_US, MIN_US
from tests.conftest import database_url

_EXAMPLE = itertools.count()
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=30)
# combining marks and precomposed letters, so NFC has work to do
ACCENTED = st.lists(st.sampled_from(["e", "\u0301", "é", "A", "\u030a", "Å", "ﬁ", "한", "ᄒ",
                                     "ᅡ", "ᆫ", " ", "-"]), max_size=12).map("".join)
FINITE = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([-0.0, 0.0])
SCALAR = st.none() | st.booleans() | st.integers(-2**53, 2**53) | FINITE | TEXT | ACCENTED
JSONISH = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(TEXT | ACCENTED, inner, max_size=3), max_leaves=8)


@pytest.fixture(params=["sqlite-file", "postgres"])
def store(request, tmp_path):
    led = modelward.open(str(tmp_path / "home"),
                         database_url=database_url(request.param, tmp_path, request))
    yield led.store
    led.close()


def _nfc(s):
    return unicodedata.normalize("NFC", s)


def _same_float(got, want):
    return got == want and math.copysign(1, got) == math.copysign(1, want)


def _canonical(value):
    if isinstance(value, str):
        return _nfc(value)
    if isinstance(value, float):
        return value + 0.0
    if isinstance(value, dict):
        return {_nfc(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


decision_st = st.fixed_dictionaries({
    "at": st.integers(MIN_US, MAX_US),
    "subject": ACCENTED.filter(bool) | TEXT.filter(bool),
    "alias": ACCENTED | st.just("chat/v1"),
    "process": TEXT.filter(bool),
    "gate": st.fixed_dictionaries({"threshold": FINITE}),
    "segments": st.dictionaries(TEXT | ACCENTED, SCALAR, max_size=4),
    "extra": st.dictionaries(TEXT | ACCENTED, JSONISH, max_size=3),
    "input_text": TEXT | ACCENTED,
})

record_st = st.fixed_dictionaries({
    "rating": FINITE, "comment": TEXT | ACCENTED, "name": ACCENTED.map(str.strip),
    "reason": TEXT | ACCENTED, "metric": FINITE, "target": FINITE, "cut": FINITE,
    "exposure_subject": (TEXT | ACCENTED).filter(lambda s: bool(s.strip())),
})


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ds=st.lists(decision_st, min_size=1, max_size=4), rec=record_st)
def test_decisions_and_records_round_trip_and_verify(store, ds, rec):
    n = next(_EXAMPLE)  # each example writes new names into the same ledger
    rows, payloads = [], []
    for d in ds:
        row, payload = decisions.normalize(d)
        rows.append(row)
        payloads.append(payload)
    decisions.append(store, rows, payloads)
    with store.read() as conn:
        for d, row in zip(ds, rows, strict=True):
            got = decisions.get(conn, row[0])
            assert got.at == d["at"] and type(got.at) is int
            assert got.subject == _nfc(d["subject"]) and got.process == _nfc(d["process"])
            assert got.alias == _nfc(d["alias"])
            assert _same_float(got.gate_threshold, d["gate"]["threshold"] + 0.0)
            assert got.segments == _canonical(d["segments"])
            assert got.extra == _canonical(d["extra"])
    # every record type that carries free text or numbers
    model = artifacts.register_bytes(store, "model", f"weights {n}".encode(),
                                     name=rec["name"] or "m").artifact.digest
    fb = ledger_feedback.normalize({"decision_id": rows[0][0], "rating": rec["rating"],
                                    "comment": rec["comment"], "surface": "production",
                                    "author_kind": "customer"})
    name = f"exp-{n}"
    with store.write() as conn:
        aliases.set_alias(conn, f"chat/p{n}", model, reason=rec["reason"])
        ledger_feedback.add(conn, [fb])
        policy = f"gate-{n}"
        thresholds.insert(conn, PolicyVersion(policy, 1, 1, "pass_rate", rec["target"],
                                              rec["cut"], -0.0, model, {"e": rec["reason"]}))
        if not experiments_exists(conn, name):
            experiments.create(conn, name, rec["reason"] or "salt", [("a", 1.0), ("b", -0.0 + 1)])
    people.sync(store, [{"email": f"p{n}@example.com", "status": "active",
                         "name": rec["name"] or None}])
    experiments.append_exposures(store, [experiments.normalize_exposure(
        {"experiment": name, "subject": rec["exposure_subject"], "arm": "a",
         "metric": rec["metric"]})])
    with store.read() as conn:
        [got] = ledger_feedback.list_feedback(conn, ids=[fb["id"]])
        assert _same_float(got.rating, rec["rating"] + 0.0)
        assert got.comment == fb["comment"]
        p = thresholds.latest(conn, policy)
        assert _same_float(p.target, rec["target"] + 0.0) and _same_float(p.cut, rec["cut"] + 0.0)
        assert _same_float(p.previous_cut, 0.0)
        report = chain.verify(conn)
    assert report.ok, report.problems[:3]


def experiments_exists(conn, name):
    from modelward.ledger.schema import experiments as table
    return conn.execute(sa.select(table.c.name).where(table.c.name == name)).first() is not None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_everywhere(store, bad):
    with pytest.raises(ValidationError, match="finite") as exc:
        decisions.normalize({"gate": {"threshold": bad}})
    assert exc.value.field == "gate.threshold"
    for field in ("segments", "extra"):
        with pytest.raises(ValidationError, match="not a finite number") as exc:
            decisions.normalize({field: {"x": bad}})
        assert exc.value.field == f"{field}.x"  # the path of the bad number
    with pytest.raises(ValidationError, match="finite") as exc:
        ledger_feedback.normalize({"decision_id": "0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70",
                                   "rating": bad, "surface": "production",
                                   "author_kind": "customer"})
    assert exc.value.field == "rating"
    model = artifacts.register_bytes(store, "model", b"w", name="m").artifact.digest
    with pytest.raises(ValidationError, match="is not a finite number"):
        with store.write() as conn:  # a write path with no check of its own: the column's
            thresholds.insert(conn, PolicyVersion("gate", 1, 1, "pass_rate", bad, 0.5, None,
                                                  model, {}))
    with store.read() as conn:
        assert thresholds.history(conn, "gate") == []  # nothing half-written
        assert chain.verify(conn).ok


def test_negative_zero_no_longer_breaks_an_honest_decision(store):
    row, _ = decisions.normalize({"gate": {"threshold": -0.0, "candidates": 3, "passed": 1},
                                  "segments": {"delta": -0.0}})
    decisions.append(store, [row])
    with store.read() as conn:
        d = decisions.get(conn, row[0])
        assert _same_float(d.gate_threshold, 0.0) and d.segments == {"delta": 0.0}
        assert chain.verify(conn).ok


def test_strings_are_recorded_in_nfc_and_found_either_way(store):
    decomposed = "jose\u0301"
    row, _ = decisions.normalize({"subject": decomposed, "input_text": "dob 1990-01-01"})
    decisions.append(store, [row], [(row[0], row[10], "dob 1990-01-01", None)])
    with store.read() as conn:
        assert decisions.get(conn, row[0]).subject == "josé"
        assert [d.id for d in decisions.search(conn, subject=decomposed)] == [row[0]]
    assert decisions.erase_subject(store, decomposed) == 1
