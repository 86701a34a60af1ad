"""SQLite's own JSON of a decision's chained columns (ledger/chain_sqlite.py, what verify
hashes there) must give the leaf :func:`chain.leaves` gives from the Python values."""

from __future__ import annotations

import sqlite3

import pytest

import modelward
from modelward.ledger import chain, chain_sqlite, decisions
from modelward.timefmt import parse_time

T = parse_time("2026-03-01T00:00:00Z")
ODD_TEXT = ["plain", "quote \" and \\ back/slash", "tab\tnew\nline\r\x08\x0c", "\x01\x1f\x7f",
            "é NFC", "日本語", "emoji 😀", "\u2028\u2029", "\ufeffbom", "{\"a\": [1]}"]


def _rows(n=len(ODD_TEXT)):
    out = []
    for i in range(n):
        text = ODD_TEXT[i % len(ODD_TEXT)]
        d = {"at": T + i, "subject": text, "alias": text[:200], "process": text,
             "vendor_model_id": text, "model_digest": "sha256:" + "a" * 64,
             "segments": {"k": text, "n": i, "x": 0.1 * i, "b": i % 2 == 0},
             "extra": {"nested": [text, None, -1.5e300]}}
        if i % 3:
            d["gate"] = {"threshold": [0.1, -0.0, 1e-7, 123456789.125, 3][i % 5],
                         "candidates": i + 1, "passed": i % 2}
        out.append(decisions.normalize(d)[0])
    return out


@pytest.fixture
def sqlite_store(tmp_path):
    ledger = modelward.open(str(tmp_path / "home"),
                            database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger.store
    ledger.close()


pytestmark = pytest.mark.skipif(not chain_sqlite.SUPPORTED, reason="SQLite < 3.38")


def test_sqlite_json_leaves_equal_the_python_leaves(sqlite_store):
    decisions.append(sqlite_store, _rows(40))
    with sqlite_store.read() as conn:
        python = chain.leaves(conn.exec_driver_sql(chain._select_chained("")).fetchall(), 1)
        made = chain_sqlite.leaves(conn.exec_driver_sql(chain_sqlite.select()).fetchall())
        report = chain.verify(conn)
    assert made == python
    assert report.ok and report.decisions == 40


def test_a_value_stored_with_another_type_breaks_the_block(sqlite_store):
    rows = _rows(6)
    decisions.append(sqlite_store, rows[:3])
    decisions.append(sqlite_store, rows[3:])
    db = sqlite3.connect(sqlite_store.engine.url.database)
    # a time stored as text (the letter keeps SQLite from making it an integer again),
    # a count as a float
    db.execute("UPDATE decisions SET at = 'T' || at WHERE id = ?", (rows[1][0],))
    db.execute("UPDATE decisions SET gate_candidates = gate_candidates + 0.5 WHERE id = ?",
               (rows[4][0],))
    db.commit()
    db.close()
    with sqlite_store.read() as conn:
        report = chain.verify(conn)
    assert [p.block for p in report.problems] == [1, 2]
    assert report.problems[0].reason == "decisions do not match the sealed root"
    assert report.problems[0].decision_ids == [r[0] for r in rows[:3]]
    assert report.problems[1].decision_ids == [r[0] for r in rows[3:]]


def test_a_one_ulp_edit_of_a_gate_threshold_breaks_the_block(sqlite_store):
    """SQLite would print both floats alike (15 digits): the threshold is written by orjson."""
    import math

    rows = _rows(3)
    decisions.append(sqlite_store, rows)
    edited = math.nextafter(rows[2][14], 1.0)  # 1e-07
    assert f"{edited:.15g}" == f"{rows[2][14]:.15g}"
    assert _tampered(sqlite_store, ("UPDATE decisions SET gate_threshold = ? WHERE id = ?",
                                    (edited, rows[2][0]))) == [
        (1, "decisions do not match the sealed root")]


def _tampered(store, *statements) -> list[tuple]:
    """Run ``(sql, params)`` statements on the ledger's file behind its back, then verify:
    the (block, reason) of each problem."""
    db = sqlite3.connect(store.engine.url.database)
    for sql, params in statements:
        db.execute(sql, params)
    db.commit()
    db.close()
    with store.read() as conn:
        return [(p.block, p.reason) for p in chain.verify(conn).problems]


def test_a_one_ulp_edit_of_a_short_threshold_breaks_the_block(sqlite_store):
    """0.4 and the next double both print as 0.4 with 15 digits (SQLite's way): the edit
    shows only because the threshold is written by orjson."""
    import math

    rows = [r[:14] + (0.4,) + r[15:] for r in _rows(4)]
    decisions.append(sqlite_store, rows[:2])
    decisions.append(sqlite_store, rows[2:])
    edited = math.nextafter(0.4, 1.0)
    assert f"{edited:.15g}" == "0.4"
    assert _tampered(sqlite_store, ("UPDATE decisions SET gate_threshold = ? WHERE id = ?",
                                    (edited, rows[3][0]))) == [
        (2, "decisions do not match the sealed root")]


def test_swapped_positions_break_the_block(sqlite_store):
    """Positions are not hashed, but they order the leaves."""
    rows = _rows(4)
    decisions.append(sqlite_store, rows)
    swap = "UPDATE decisions SET pos = ? WHERE id = ?"
    assert _tampered(sqlite_store, (swap, (9, rows[1][0])), (swap, (1, rows[2][0])),
                     (swap, (2, rows[1][0]))) == [(1, "decisions do not match the sealed root")]
