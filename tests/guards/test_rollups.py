"""The counting guards (MW101, MW102, MW104, MW105, MW301) read per-block rollups: the same
findings as from the decisions themselves, for every window, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from modelward.ledger import rollups

from .builders import DAY, HOUR, MIN, NOW, T0, move, put, put_hosted, record, resolve

GUARDS = ("MW101", "MW102", "MW104", "MW105", "MW301")
# all history, windows whose start cuts through blocks, and one after every decision
WINDOWS = (None, T0 - 10 * DAY, T0 + HOUR + 17_000_000, T0 + 3 * HOUR + 5 * MIN, NOW)


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
