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
    db = sqlite3.connect(sqlite_store.engine.url.database)
    db.execute("UPDATE decisions SET gate_threshold = ? WHERE id = ?", (edited, rows[2][0]))
    db.commit()
    db.close()
    with sqlite_store.read() as conn:
        report = chain.verify(conn)
    assert [(p.block, p.reason) for p in report.problems] == [
        (1, "decisions do not match the sealed root")]


# ---- one value per block (chain_sqlite.select_blocks) ---------------------------------------
def _old_leaves(conn) -> dict:
    """Each block's leaves as chain.leaves computes them from the Python values."""
    import itertools

    rows = conn.exec_driver_sql(chain._select_chained("")).fetchall()
    return {number: chain.leaves(list(group), 1)
            for number, group in itertools.groupby(rows, key=lambda r: r[0])}


def _new_leaves(conn) -> tuple[dict, int]:
    """Each block's leaves as verify now computes them, and how many blocks SQLite's own
    text served (the others were read row by row)."""
    out, fast = {}, 0
    for row in conn.exec_driver_sql(chain_sqlite.select_blocks()).fetchall():
        got = chain_sqlite.block_leaves(conn, row)
        fast += got is not None
        out[row[0]] = got if got is not None else chain_sqlite._row_leaves(conn, row[0])
    return out, fast


def _edge_floats():
    import math
    import sys

    tiny = 5e-324
    out = [tiny, 2 * tiny, 2.2250738585072014e-308, 2.225073858507201e-308, sys.float_info.max,
           1e-5, 1e-4, 1.5e-5, 9.999999999999999e-5, 0.0001, 0.001, 1e-7, 1e15, 1e16, 1e17,
           1e21, 1e22, 1e23, 123456789012345.0, 1234567890123456.0, 12345678901234567.0,
           999999999999999.9, 9999999999999998.0, 0.1 + 0.2, 1 / 3, 2 / 3, 0.3, 0.4, 0.5,
           2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 63, 2.0 ** 64, 3.0, 1.0, 100.0, 1e300, 1e-300,
           123456789.125, 0.1, 0.7, 0.95, 0.999999999999999, 0.9999999999999999]
    for e in range(-325, 309):
        for m in (1.0, 1.5, 2.5, 9.999999999999999, 1.2345678901234567):
            try:
                out.append(float(f"{m}e{e}"))
            except OverflowError:
                pass
    out += [math.nextafter(x, math.inf) for x in list(out)]
    out += [-x for x in out]
    return [x for x in out if math.isfinite(x) and x != 0]


def _random_floats(rng, n):
    import math
    import struct

    out = []
    while len(out) < n:
        kind = rng.randrange(4)
        if kind == 0:  # any double
            x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        elif kind == 1:  # a threshold someone typed
            x = round(rng.random() * 10 ** rng.randrange(-3, 4), rng.randrange(0, 8))
        elif kind == 2:  # one computed
            x = rng.random() * rng.choice([1, 0.01, 1e-6, 1e6, 1e15, 1e16, 1e-300])
        else:  # an integer-valued one
            x = float(rng.randrange(-10 ** rng.randrange(1, 19), 10 ** rng.randrange(1, 19)))
        if math.isfinite(x):
            out.append(x)
    return out


def _bare_decisions(path, typed=True):
    """A decisions table without a ledger around it (``typed=False``: no column types,
    so anything a tamperer writes stays as written, -0.0 included)."""
    import sqlalchemy as sa

    cols = [*chain.CHAINED, "block", "pos"]
    decl = {"gate_threshold": "FLOAT", "at": "BIGINT", "recorded_at": "BIGINT",
            "gate_candidates": "INTEGER", "gate_passed": "INTEGER", "block": "BIGINT",
            "pos": "INTEGER"}
    spec = ", ".join(f"{c} {decl.get(c, 'VARCHAR') if typed else ''}".strip() for c in cols)
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE decisions ({spec})")
    db.execute("CREATE INDEX ix_decisions_block_pos ON decisions (block, pos)")
    db.commit()
    db.close()
    return sa.create_engine(f"sqlite:///{path}")


def _insert(engine, rows):
    """rows: (block, pos, gate_threshold, id) with the other columns fixed."""
    marks = ", ".join("?" * (len(chain.CHAINED) + 2))
    full = []
    for block, pos, threshold, ident in rows:
        values = dict.fromkeys(chain.CHAINED)
        values.update(id=ident, at=T + pos, alias="chat/v1", model_digest="sha256:" + "a" * 64,
                      segments='{"tier":"pro"}', gate_threshold=threshold, gate_candidates=20,
                      gate_passed=pos % 21, process="serve-1:1", recorded_at=T + 10 ** 6)
        full.append((*values.values(), block, pos))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO decisions VALUES ({marks})", full)


@pytest.mark.parametrize("typed", [True, False])
def test_block_leaves_equal_the_python_leaves_for_any_threshold(tmp_path, typed):
    """A seeded differential test: every double class (subnormals, powers of ten where
    either writer switches to exponents, 15/16/17-digit values, integers as floats, huge),
    one value per block and many per block, plus what a tamperer could store in the column
    (-0.0, integers, text, NULL): SQLite's text is used only where it is orjson's."""
    import random

    rng = random.Random(20261206)
    floats = _edge_floats() + _random_floats(rng, 200_000 if typed else 20_000)
    rng.shuffle(floats)
    engine = _bare_decisions(str(tmp_path / "d.db"), typed)
    rows, block = [], 1
    odd = [None, 0.0, -0.0, 3, -7, 2 ** 53 + 1, 2 ** 63 - 1, "0.4", "x", 0.4]
    for i, x in enumerate(floats[:4000]):  # one value per block (min = max)
        rows += [(block, p, x, f"c{i}-{p}") for p in range(3)]
        block += 1
    rest = floats[4000:]
    for start in range(0, len(rest), 200):  # many values per block (DISTINCT)
        part = rest[start:start + 200]
        if block % 7 == 0:
            part = part + [odd[block % len(odd)]]
        rows += [(block, p, x, f"m{block}-{p}") for p, x in enumerate(part)]
        block += 1
    for i, x in enumerate(odd):  # tamperers' values alone and with a trusted double
        rows += [(block, 0, x, f"o{i}"), (block, 1, x, f"o{i}b")]
        rows += [(block + 1, 0, x, f"p{i}"), (block + 1, 1, 0.4, f"p{i}b")]
        block += 2
    _insert(engine, rows)
    with engine.connect() as conn:
        old = _old_leaves(conn)
        new, fast = _new_leaves(conn)
    engine.dispose()
    assert new.keys() == old.keys()
    assert [b for b in old if new[b] != old[b]] == []
    assert fast > 1000  # SQLite's text served most one-value blocks


def test_a_tampered_threshold_column_keeps_orjsons_text(tmp_path):
    """Stored -0.0 equals 0.0 in SQL and SQLite writes both 0.0: zero is never trusted."""
    engine = _bare_decisions(str(tmp_path / "d.db"), typed=False)
    _insert(engine, [(1, 0, -0.0, "a"), (1, 1, -0.0, "b"), (2, 0, 0.0, "c"), (2, 1, -0.0, "d")])
    with engine.connect() as conn:
        old = _old_leaves(conn)
        new, fast = _new_leaves(conn)
        assert conn.exec_driver_sql("SELECT json_array(gate_threshold) FROM decisions "
                                    "WHERE id = 'a'").scalar() == "[0.0]"
    engine.dispose()
    assert new == old and fast == 0


def test_positions_out_of_order_or_not_integers_are_read_row_by_row(tmp_path):
    engine = _bare_decisions(str(tmp_path / "d.db"), typed=False)
    _insert(engine, [(1, p, 0.4, f"a{p}") for p in range(5)]
            + [(2, p, 0.4, f"b{p}") for p in (0, 3, 9)]  # gaps: still in order
            + [(3, p, 0.4, f"c{p}") for p in (0, 1, 2)])
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE decisions SET pos = '1' WHERE id = 'c1'")  # text
    with engine.connect() as conn:
        rows = {r[0]: r for r in conn.exec_driver_sql(chain_sqlite.select_blocks())}
        assert chain_sqlite.block_leaves(conn, rows[1]) is not None
        assert chain_sqlite.block_leaves(conn, rows[2]) is not None
        assert chain_sqlite.block_leaves(conn, rows[3]) is None
        old = _old_leaves(conn)
        new, _ = _new_leaves(conn)
    engine.dispose()
    assert new == old
    assert not chain_sqlite._in_order("2,1", 2) and not chain_sqlite._in_order("1,1", 2)
    assert not chain_sqlite._in_order(None, 1) and not chain_sqlite._in_order("0,a", 2)


def test_a_block_of_several_thresholds_uses_sqlites_text(tmp_path):
    engine = _bare_decisions(str(tmp_path / "d.db"))
    _insert(engine, [(1, p, x, f"a{p}") for p, x in enumerate([0.4, 0.25, None, 0.4, 7.0])]
            + [(2, p, x, f"b{p}") for p, x in enumerate([0.4, 0.1 + 0.2])])
    with engine.connect() as conn:
        rows = {r[0]: r for r in conn.exec_driver_sql(chain_sqlite.select_blocks())}
        assert chain_sqlite.block_leaves(conn, rows[1]) is not None
        assert chain_sqlite.block_leaves(conn, rows[2]) is None  # 0.30000000000000004
        old = _old_leaves(conn)
        new, fast = _new_leaves(conn)
    engine.dispose()
    assert new == old and fast == 1
    assert not chain_sqlite._in_order("0,1", 3) and chain_sqlite._in_order("0,5,7", 3)


def test_a_one_ulp_edit_of_a_short_threshold_breaks_the_block(sqlite_store):
    """0.4 and the next double both print as 0.4 with 15 digits: SQLite's text is not used
    for the edited one."""
    import math

    rows = [r[:14] + (0.4,) + r[15:] for r in _rows(4)]
    decisions.append(sqlite_store, rows[:2])
    decisions.append(sqlite_store, rows[2:])
    edited = math.nextafter(0.4, 1.0)
    assert f"{edited:.15g}" == "0.4"
    db = sqlite3.connect(sqlite_store.engine.url.database)
    db.execute("UPDATE decisions SET gate_threshold = ? WHERE id = ?", (edited, rows[3][0]))
    db.commit()
    db.close()
    with sqlite_store.read() as conn:
        report = chain.verify(conn)
    assert [(p.block, p.reason) for p in report.problems] == [
        (2, "decisions do not match the sealed root")]


def test_swapped_positions_break_the_block(sqlite_store):
    rows = _rows(4)
    decisions.append(sqlite_store, rows)
    db = sqlite3.connect(sqlite_store.engine.url.database)
    db.execute("UPDATE decisions SET pos = 9 WHERE id = ?", (rows[1][0],))
    db.execute("UPDATE decisions SET pos = 1 WHERE id = ?", (rows[2][0],))
    db.execute("UPDATE decisions SET pos = 2 WHERE id = ?", (rows[1][0],))
    db.commit()
    db.close()
    with sqlite_store.read() as conn:
        report = chain.verify(conn)
    assert [(p.block, p.reason) for p in report.problems] == [
        (1, "decisions do not match the sealed root")]


def test_a_block_too_long_for_sqlite_is_verified_row_by_row(sqlite_store):
    for _ in range(4):
        decisions.append(sqlite_store, [r[:14] + (0.4,) + r[15:] for r in _rows(30)])
    with sqlite_store.read() as conn:
        raw = conn.connection.driver_connection
        before = raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 8000)  # one row fits, a block does not
        seen: list[int] = []
        try:
            report = chain.verify(conn, progress=seen.append)
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, before)
    assert report.ok and report.decisions == 120 and sum(seen) == 120
