"""The counting guards (MW101, MW102, MW104, MW105, MW301) read per-block rollups: the same
findings as from the decisions themselves, for every window, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from modelward.ledger import rollups

from .builders import DAY, HOUR, MIN, NOW, T0, move, put, put_hosted, record, resolve

GUARDS = ("MW101", "MW102", "MW104", "MW105", "MW301")
# all history, windows whose start cuts through blocks, and one after every decision
WINDOWS = (None, T0 - 10 * DAY, T0 + HOUR + 17_000_000, T0 + 3 * HOUR + 5 * MIN, NOW)
_ROLLUP_COLUMNS = [c.name for c in rollups.decision_rollups.columns]


def _dirty(store, fleet) -> None:
    """What fires: a lagging process, an alias without its digest, an unknown digest, a
    hosted snapshot served as another and changing unannounced, an unscored pair."""
    v5 = put(store, "model", b"weights-v5", "chat", "v5")
    move(store, "chat/v1", v5, T0 + 6 * HOUR)
    pinned = put_hosted(store, "openai:gpt-4o-mini-2024-07-18", "mini")
    decs = []
    for step in range(60):  # resolve an hour (50 minutes) late, so name v3 after the move
        for process, lag, off in (("lagger", HOUR, 1), ("lagger-2", 50 * MIN, 2)):
            at = T0 + 4 * HOUR + step * 4 * MIN + off * 1_000_000
            decs.append(dict(at=at, alias="chat/v1", process=process,
                             model_digest=resolve(store, "chat/v1", at - lag),
                             prompt_digest=fleet["p38"]))
    decs += [dict(at=T0 + i * 7 * MIN + 2_000_000, alias="chat/v1", process="hand")
             for i in range(30)]
    decs += [dict(at=T0 + i * 9 * MIN + 3_000_000, process="odd",
                  model_digest="sha256:" + "ab" * 32, prompt_digest=fleet["p37"])
             for i in range(25)]
    decs += [dict(at=T0 + i * 5 * MIN + 4_000_000, alias="chat/mini", process="api-2",
                  model_digest=pinned,
                  vendor_model_id="gpt-4o-mini-2024-07-18" if i % 17 < 12 else "gpt-4o-mini")
             for i in range(70)]
    record(store, decs, block=13)  # odd blocks: window starts and range ends cut through them


def _run(findings, settings_for, code: str, since, rollups_on: bool):
    settings = settings_for(check_rollups=rollups_on)
    return [f.to_dict() for f in findings(code, since=since, settings=settings)]


def test_rollups_give_the_findings_of_the_decisions(ledger, fleet, findings, settings_for):
    _dirty(ledger.store, fleet)
    fired = set()
    for code in GUARDS:
        for since in WINDOWS:
            raw = _run(findings, settings_for, code, since, False)
            assert _run(findings, settings_for, code, since, True) == raw, (code, since)
            if raw:
                fired.add(code)
    assert fired == {"MW101", "MW104", "MW105", "MW301"}  # MW102: the fleet keeps payloads


def test_a_block_without_rollups_is_read_from_its_decisions(ledger, fleet, findings,
                                                             settings_for):
    _dirty(ledger.store, fleet)
    before = {c: _run(findings, settings_for, c, None, True) for c in GUARDS}
    with ledger.store.write() as conn:  # as a back-fill that has not reached these blocks
        conn.exec_driver_sql("DELETE FROM decision_rollups WHERE (block / 3) * 3 = block")
    for code in GUARDS:
        assert _run(findings, settings_for, code, None, True) == before[code], code
    with ledger.store.read() as conn:
        assert ledger_verify_ok(conn)


def ledger_verify_ok(conn) -> bool:
    from modelward.ledger import chain

    return chain.verify(conn).ok


@pytest.mark.parametrize("sql, problem", [
    ("UPDATE decision_rollups SET count = count + 5 WHERE block = {b} AND pos = 0", "edited"),
    ("DELETE FROM decision_rollups WHERE block = {b} AND pos = 1", "deleted"),
    ("INSERT INTO decision_rollups (block, pos, alias, count, first_at, last_at, min_id) "
     "VALUES ({b}, 99, 'chat/v9', 1, 1, 1, 'x')", "inserted"),
    # an exact copy of a row: the database's pairing must see it twice
    ("INSERT INTO decision_rollups SELECT block, 99, " + ", ".join(_ROLLUP_COLUMNS[2:])
     + " FROM decision_rollups WHERE block = {b} AND pos = 0", "inserted"),
])
def test_a_tampered_rollup_is_caught_by_verify(ledger, fleet, sql, problem):
    _dirty(ledger.store, fleet)
    with ledger.store.read() as conn:
        block = conn.exec_driver_sql(
            "SELECT block FROM decision_rollups GROUP BY block HAVING count(*) > 1 "
            "ORDER BY block LIMIT 1").scalar()
    with ledger.store.write() as conn:
        conn.exec_driver_sql(sql.format(b=block))
    from modelward.ledger import chain

    with ledger.store.read() as conn:
        report = chain.verify(conn)
    assert not report.ok
    broken = [p for p in report.problems if p.block == block]
    assert broken and broken[0].reason == "its rollups do not match its decisions"
    assert {r["problem"] for r in broken[0].records} == {problem}
    assert all(r["kind"] == "decision_rollups" for r in broken[0].records)


def test_deleting_decisions_refreshes_their_rollups(ledger, fleet, findings, settings_for):
    """Retention (or archiving) that deletes decisions refreshes the rollups of their blocks
    in the same transaction: the guards then agree with what is left."""
    _dirty(ledger.store, fleet)
    with ledger.store.read() as conn:
        blocks = list(conn.exec_driver_sql(
            "SELECT DISTINCT block FROM decisions WHERE process = 'lagger'").scalars())
    assert len(blocks) > 1
    with ledger.store.write() as conn:
        conn.exec_driver_sql(f"DELETE FROM decisions WHERE process = 'lagger' "
                             f"AND block = {blocks[0]}")
        conn.exec_driver_sql(f"DELETE FROM decisions WHERE block = {blocks[-1]}")
        rollups.refresh(conn, blocks)
    for code in GUARDS:
        for since in WINDOWS:
            assert (_run(findings, settings_for, code, since, True)
                    == _run(findings, settings_for, code, since, False)), (code, since)
    with ledger.store.read() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM decision_rollups "
                                    f"WHERE block = {blocks[-1]}").scalar() == 0


def test_erasing_text_leaves_rollups_and_findings_alone(ledger, fleet, findings, settings_for):
    from modelward.ledger import decisions

    _dirty(ledger.store, fleet)
    before = {c: _run(findings, settings_for, c, None, True) for c in GUARDS}
    assert decisions.erase_subject(ledger.store, "u3") > 0
    for code in GUARDS:
        assert _run(findings, settings_for, code, None, True) == before[code], code
    with ledger.store.read() as conn:
        assert ledger_verify_ok(conn)


def test_the_migration_backfills_rollups_as_append_writes_them(ledger, fleet):
    _dirty(ledger.store, fleet)
    with ledger.store.read() as conn:
        written = sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT * FROM decision_rollups").all())
    with ledger.store.write() as conn:
        rollups.backfill(conn)
    with ledger.store.read() as conn:
        again = sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT * FROM decision_rollups").all())
    assert written == again and len(written) > 10


def test_since_leaves_earlier_decisions_out_of_every_count(ledger, fleet, findings,
                                                           settings_for):
    """--since is applied in each guard's query: a window after every decision finds
    nothing, and a window cutting through the lagging process counts only its later part."""
    _dirty(ledger.store, fleet)
    for rollups_on in (True, False):
        for code in GUARDS:
            assert _run(findings, settings_for, code, NOW, rollups_on) == [], code
        whole = sum(f["evidence"]["decisions"] for f in _run(
            findings, settings_for, "MW105", None, rollups_on))
        cut = sum(f["evidence"]["decisions"] for f in _run(
            findings, settings_for, "MW105", T0 + 6 * HOUR + 40 * MIN, rollups_on))
        assert 0 < cut < whole
        unknown = [f for f in _run(findings, settings_for, "MW101", T0 + 2 * HOUR, rollups_on)
                   if f["evidence"]["kind"] == "unknown-digest"]
        assert unknown and unknown[0]["evidence"]["decisions"] < 25


# --- retrieval gates (MW502) -------------------------------------------------------------------
GATE_WINDOWS = (None, T0 - 10 * DAY, T0 + HOUR + 17_000_000, T0 + 2 * HOUR + 30 * MIN,
                T0 + 3 * HOUR + 5 * MIN + 3_000_000, T0 + 5 * HOUR, NOW)
# guard runs at these moments: after everything, and inside the traffic (blocks cut at both ends)
GATE_NOWS = (NOW, T0 + 4 * HOUR + 7 * MIN + 500_000)


def _gated(store, tmp_path) -> None:
    """Gates whose pass rate drops when the embedder or reranker changes, one that holds,
    decisions without an alias, cuts without candidate figures and a stale policy cut."""
    from modelward.retrieval import calibration

    from .test_mw502_threshold_drift import reference

    e1 = put(store, "embedder", b"e5-v1", "e5", "1", at=T0 - HOUR)
    e2 = put(store, "embedder", b"e5-v2", "e5", "2", at=T0 - HOUR)
    r1 = put(store, "reranker", b"rr-v1", "rr", "1", at=T0 - HOUR)
    r2 = put(store, "reranker", b"rr-v2", "rr", "2", at=T0 - HOUR)
    cut = calibration.calibrate(store, "rag/support-gate", reference(tmp_path, "r.jsonl", 1, 0),
                                mode="pass_rate", target=0.35, embedder=e1, at=T0).policy.cut
    decs = []
    for i in range(300):
        at = T0 + HOUR + i * 40_000_000 + 1_000_000
        after = i >= 150  # 35% -> 22% on e5-v2 (at T0 + 2h40m)
        decs.append(dict(at=at, alias="rag/support", process="rag-1",
                         embedder_digest=e2 if after else e1, reranker_digest=r1,
                         gate={"threshold": cut, "candidates": 20 + i % 3,
                               "passed": (4, 5, 4, 5, 4)[i % 5] + (0 if after else 3)}))
        decs.append(dict(at=at + 2_000_000, alias="rag/faq", process="rag-2",
                         embedder_digest=e1, reranker_digest=r2 if i >= 120 else r1,
                         gate={"threshold": 0.3, "candidates": 10,
                               "passed": (0, 10, 3, 6)[i % 4] if i < 120 else (0, 5, 1, 2)[i % 4]}))
        decs.append(dict(at=at + 3_000_000, process="rag-3", embedder_digest=e1 if i < 200 else e2,
                         gate={"threshold": 0.5, "candidates": 8, "passed": 3 + i % 2}))
        if i % 7 == 0:  # a cut with no candidate figures, and figures with no cut
            decs.append(dict(at=at + 4_000_000, alias="rag/support", process="rag-1",
                             embedder_digest=e2, gate={"threshold": cut}))
            decs.append(dict(at=at + 5_000_000, alias="rag/faq", process="rag-2",
                             embedder_digest=e1, gate={"candidates": 10, "passed": 9}))
    record(store, decs, block=17)


def _gate_run(findings, settings_for, since, rollups_on, now=NOW):
    settings = settings_for(check_rollups=rollups_on)
    return [f.to_dict() for f in findings("MW502", since=since, now=now, settings=settings,
                                          min_candidates=50)]


def test_rollups_give_MW502_the_findings_of_the_decisions(ledger, fleet, findings,
                                                          settings_for, tmp_path):
    _gated(ledger.store, tmp_path)
    kinds = set()
    for now in GATE_NOWS:
        for since in GATE_WINDOWS:
            raw = _gate_run(findings, settings_for, since, False, now)
            assert _gate_run(findings, settings_for, since, True, now) == raw, (since, now)
            kinds |= {(f["subject"], f["evidence"]["kind"]) for f in raw}
    assert kinds == {("rag/support", "pass-rate-shift"), ("rag/support", "stale-cut"),
                     ("rag/faq", "pass-rate-shift")}


def test_MW502_reads_gate_sums_not_decisions(ledger, fleet, findings, settings_for, tmp_path):
    """With every block rolled and the window whole, the gate sums answer: forging them (and
    nothing else) moves the finding, which the decisions themselves would not; verify
    then names the block."""
    _gated(ledger.store, tmp_path)
    before = _gate_run(findings, settings_for, None, True)
    with ledger.store.write() as conn:
        conn.exec_driver_sql("UPDATE decision_rollups SET gate_passed = gate_passed + 40 "
                             "WHERE gated > 0 AND alias = 'rag/support' AND block = "
                             "(SELECT min(block) FROM decision_rollups WHERE gated > 0 "
                             "AND alias = 'rag/support')")
    assert _gate_run(findings, settings_for, None, True) != before
    assert _gate_run(findings, settings_for, None, False) == before
    from modelward.ledger import chain

    with ledger.store.read() as conn:
        report = chain.verify(conn)
    assert not report.ok and [p.reason for p in report.problems] == [
        "its rollups do not match its decisions"]


@pytest.mark.parametrize("sql, problem", [
    ("UPDATE decision_rollups SET gate_xx = gate_xx + 1 WHERE block = {b} AND pos = {p}",
     "edited"),
    ("UPDATE decision_rollups SET gated = 0, gate_passed = 0, gate_candidates = 0, "
     "gate_xx = 0, gate_xn = 0, gate_nn = 0, gate_first_at = NULL "
     "WHERE block = {b} AND pos = {p}", "edited"),
    ("UPDATE decision_rollups SET cut_last_at = cut_last_at + 1 WHERE block = {b} AND pos = {p}",
     "edited"),
    ("DELETE FROM decision_rollups WHERE block = {b} AND pos = {p}", "deleted"),
    ("INSERT INTO decision_rollups (block, pos, alias, count, first_at, last_at, min_id, gated, "
     "gate_first_at, gate_passed, gate_candidates, gate_xx, gate_xn, gate_nn, cut_last_at) "
     "VALUES ({b}, 99, 'rag/support', 1, 1, 1, 'x', 1, 1, 20, 20, 400, 400, 400, 1)", "inserted"),
])
def test_a_tampered_gate_rollup_is_caught_by_verify(ledger, fleet, tmp_path, sql, problem):
    _gated(ledger.store, tmp_path)
    with ledger.store.read() as conn:
        block, pos = conn.exec_driver_sql(
            "SELECT block, min(pos) FROM decision_rollups WHERE gated > 0 AND block IN "
            "(SELECT block FROM decision_rollups GROUP BY block HAVING count(*) > 1) "
            "GROUP BY block ORDER BY block LIMIT 1").one()
    with ledger.store.write() as conn:
        conn.exec_driver_sql(sql.format(b=block, p=pos))
    from modelward.ledger import chain

    with ledger.store.read() as conn:
        report = chain.verify(conn)
    broken = [p for p in report.problems if p.block == block]
    assert not report.ok and broken
    assert broken[0].reason == "its rollups do not match its decisions"
    assert {r["problem"] for r in broken[0].records} == {problem}


def test_rollups_without_gate_sums_are_read_from_their_decisions(ledger, fleet, findings,
                                                                  settings_for, tmp_path):
    """Rows written by a modelward that predates the gate sums (NULL): MW502 takes those
    blocks from their decisions, and verify vouches for their counts only."""
    _gated(ledger.store, tmp_path)
    before = {s: _gate_run(findings, settings_for, s, True) for s in GATE_WINDOWS}
    with ledger.store.write() as conn:
        conn.exec_driver_sql(
            "UPDATE decision_rollups SET gated = NULL, gate_first_at = NULL, gate_passed = NULL, "
            "gate_candidates = NULL, gate_xx = NULL, gate_xn = NULL, gate_nn = NULL, "
            "cut_last_at = NULL WHERE (block / 2) * 2 = block")
    for since, want in before.items():
        assert _gate_run(findings, settings_for, since, True) == want, since
    with ledger.store.read() as conn:
        assert ledger_verify_ok(conn)


def test_retirement_refresh_keeps_MW502_on_what_is_left(ledger, fleet, findings, settings_for,
                                                        tmp_path):
    _gated(ledger.store, tmp_path)
    with ledger.store.read() as conn:
        blocks = list(conn.exec_driver_sql(
            "SELECT DISTINCT block FROM decisions WHERE process = 'rag-1' ORDER BY block"
        ).scalars())
    with ledger.store.write() as conn:
        conn.exec_driver_sql(f"DELETE FROM decisions WHERE block = {blocks[0]}")
        conn.exec_driver_sql(f"DELETE FROM decisions WHERE process = 'rag-2' "
                             f"AND block = {blocks[3]}")
        rollups.refresh(conn, blocks)
    for since in GATE_WINDOWS:
        assert (_gate_run(findings, settings_for, since, True)
                == _gate_run(findings, settings_for, since, False)), since
    with ledger.store.read() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM decision_rollups "
                                    f"WHERE block = {blocks[0]}").scalar() == 0


def test_the_migration_backfills_gate_sums_as_append_writes_them(ledger, fleet, tmp_path):
    _gated(ledger.store, tmp_path)
    with ledger.store.read() as conn:
        written = sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT * FROM decision_rollups").all())
    with ledger.store.write() as conn:
        rollups.backfill(conn)
    with ledger.store.read() as conn:
        again = sorted(tuple(r) for r in conn.exec_driver_sql(
            "SELECT * FROM decision_rollups").all())
    assert written == again
    with ledger.store.read() as conn:
        gated = conn.exec_driver_sql("SELECT sum(gated) FROM decision_rollups "
                                     "WHERE process IN ('rag-1', 'rag-2', 'rag-3')").scalar()
    assert gated == 300 * 3 + 43


# --- vendor fingerprints (MW104 with fingerprint = true) ----------------------------------------
def _fingerprinted(store) -> None:
    """A hosted model whose fingerprint changes inside blocks, at block ends and together
    with its model id; a second one served by two writers at once (blocks overlap)."""
    one = put_hosted(store, "openai:gpt-4o", "gpt")
    two = put_hosted(store, "openai:gpt-4o-mini", "mini")
    decs, late = [], []
    for i in range(260):
        at = T0 + HOUR + i * 50_000_000
        fp = f"fp_{i // 37}" if i % 11 else None  # some decisions report none
        vid = "gpt-4o-2024-08-06" if i < 200 else "gpt-4o-2024-11-20"
        decs.append(dict(at=at, alias="chat/gpt", process="api-1", model_digest=one,
                         vendor_model_id=vid, vendor_fingerprint=fp))
        for k in range(2):
            (late if k else decs).append(dict(
                at=at + (k + 1) * 1_000_000, alias="chat/mini", process=f"api-{k + 2}",
                model_digest=two, vendor_model_id="gpt-4o-mini-2024-07-18",
                vendor_fingerprint=f"fm_{(i + 90 * k) // 80}"))
    record(store, decs, block=19)
    record(store, late, block=23)  # a second writer: its blocks overlap the first's in time


def test_rollups_give_MW104_fingerprint_findings_of_the_decisions(ledger, fleet, findings,
                                                                  settings_for):
    _fingerprinted(ledger.store)
    seen = set()
    for since in GATE_WINDOWS:
        runs = []
        for on in (False, True):
            settings = settings_for(check_rollups=on)
            runs.append([f.to_dict() for f in findings("MW104", since=since, settings=settings,
                                                       fingerprint=True)])
        assert runs[0] == runs[1], since
        seen |= {(f["evidence"].get("field"), f["evidence"].get("hosted_id")) for f in runs[0]}
    assert {("vendor_fingerprint", "openai:gpt-4o"),
            ("vendor_fingerprint", "openai:gpt-4o-mini")} <= seen
    # rows without the fingerprint range (an older writer) are read from their decisions
    with ledger.store.write() as conn:
        conn.exec_driver_sql("UPDATE decision_rollups SET gated = NULL, fp_min = NULL, "
                             "fp_max = NULL WHERE (block / 2) * 2 = block")
    for since in (None, T0 + HOUR + 17_000_000):
        assert ([f.to_dict() for f in findings("MW104", since=since, fingerprint=True,
                                               settings=settings_for(check_rollups=True))]
                == [f.to_dict() for f in findings("MW104", since=since, fingerprint=True,
                                                  settings=settings_for(check_rollups=False))])


def test_a_gate_figure_too_large_for_the_sums_keeps_its_block_recordable(
        ledger, fleet, findings, settings_for, tmp_path):
    """Decisions reporting 2^31 - 1 candidates (the most a decision may) would overflow the
    64-bit sums of squares: their block is still recorded and verifies, they are left out
    of MW502's test on both paths alike (the raw path's sums overflowed before), and the
    findings are those without them."""
    _gated(ledger.store, tmp_path)
    before = {s: _gate_run(findings, settings_for, s, False) for s in GATE_WINDOWS}
    huge = 2**31 - 1
    assert huge > rollups.GATE_LIMIT
    record(ledger.store, [dict(at=T0 + HOUR + k * 1_000_000, alias="rag/faq", process="rag-2",
                               gate={"threshold": 0.3, "candidates": huge, "passed": huge // 3})
                          for k in range(3)], block=5)
    with ledger.store.read() as conn:
        assert ledger_verify_ok(conn)
    for since, want in before.items():
        assert _gate_run(findings, settings_for, since, False) == want, since
        assert _gate_run(findings, settings_for, since, True) == want, since


def test_retirement_drops_gate_rollups_with_their_blocks(ledger, fleet, findings, settings_for,
                                                         tmp_path):
    """Retiring the oldest blocks (retention by rows) drops their rollups, gate sums
    included, in the same transaction: MW502 then agrees with what is left, and verify
    passes."""
    from modelward.ledger import chain, retirement

    _gated(ledger.store, tmp_path)
    with ledger.store.write() as conn:
        out = retirement.retire(conn, before=T0 + 2 * HOUR, held=set(), now=NOW)
    assert out.blocks
    listed = ", ".join(map(str, out.blocks))
    with ledger.store.read() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM decision_rollups "
                                    f"WHERE block IN ({listed})").scalar() == 0
        assert chain.verify(conn).ok
    for since in GATE_WINDOWS:
        assert (_gate_run(findings, settings_for, since, True)
                == _gate_run(findings, settings_for, since, False)), since
