"""PostgreSQL at fleet scale: decisions partitioned by month, ids idempotent across
partitions, partitions created ahead, retention by dropping partitions (holds respected),
and verify after a drop. The retention tests run on SQLite too (row deletes)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelward.errors import IdConflictError
from modelward.ledger import chain, decisions, partitions, retention
from modelward.ledger.schema import decisions as decisions_table
from modelward.registry import retention as registry_retention
from modelward.timefmt import now_us

DAY = 86_400_000_000
MODEL_A = "sha256:" + "a" * 64
MODEL_B = "sha256:" + "b" * 64


def _rows(n: int, at: int, **fields) -> list[tuple]:
    return [decisions.normalize({"at": at + i, "subject": f"u{i}", **fields})[0]
            for i in range(n)]


def _append(store, rows):
    # backfilled history: past the ingest window checks of the API, as an import would be
    return decisions.append(store, rows)


def _verify(store):
    with store.read() as conn:
        return chain.verify(conn)


def _pg_only(store):
    if store.dialect != "postgresql":
        pytest.skip("partitions are PostgreSQL's")


def test_partitions_are_created_ahead_and_rows_land_in_their_month(store):
    _pg_only(store)
    now = now_us()
    _append(store, _rows(3, now))
    with store.read() as conn:
        months = partitions.existing(conn)
        ym = partitions.month_of(now)
        assert partitions.name(*ym) in months
        ahead = ym
        for _ in range(partitions.AHEAD):
            ahead = partitions._next(*ahead)
        assert partitions.name(*ahead) in months  # the next months exist before they start
        where = conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM decisions GROUP BY 1").all()
    assert where == [(partitions.name(*ym), 3)]


@pytest.mark.parametrize("n", [5, 300], ids=["executemany", "copy"])
def test_resent_ids_are_duplicates_and_changed_content_a_conflict_across_months(store, n):
    """The key is (id, at) per partition; decision_ids keeps an id unique across them: a
    re-sent id with another ``at`` (another month) is the same decision, with other content a
    conflict, on both write paths."""
    now = now_us()
    rows = _rows(n, now - 40 * DAY)
    assert _append(store, rows).inserted == n
    moved = [r[:1] + (now,) + r[2:] for r in rows]  # the ledger stamped the time anew
    again = _append(store, moved)
    assert (again.inserted, again.duplicates, again.block) == (0, n, None)
    changed = [r[:10] + ("someone else",) + r[11:] for r in rows[:1]]
    with pytest.raises(IdConflictError) as exc:
        decisions.append(store, changed)
    assert exc.value.fields == {rows[0][0]: ["subject"]}
    with store.read() as conn:
        assert decisions.count(conn) == n
    assert _verify(store).ok


def test_a_decision_outside_every_partition_goes_to_the_default(store):
    _pg_only(store)
    far = now_us() - 20 * 365 * DAY  # older than retention: no partition is made for it
    res = _append(store, _rows(2, far))
    assert res.inserted == 2
    with store.read() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {partitions.DEFAULT}").scalar() == 2
        assert partitions.name(*partitions.month_of(far)) not in partitions.existing(conn)
    assert _verify(store).ok


def test_retention_drops_old_months_keeps_a_held_one_and_verify_says_retired(store):
    now = now_us()
    retention_days = store.settings.retention // DAY
    old = now - (retention_days + 120) * DAY  # four months past the window
    # month 1: plain old decisions; month 2: one names a held model; recent: inside the window
    m1 = _rows(4, old, model_digest=MODEL_A)
    m2 = _rows(3, old + 35 * DAY, model_digest=MODEL_A) + \
        _rows(1, old + 35 * DAY + 10, model_digest=MODEL_B, subject="held")
    recent = _rows(5, now - DAY, model_digest=MODEL_A)
    for block in (m1, m2[:3], m2[3:], recent):
        _append(store, block)
    with store.write() as conn:
        retention.place_hold(conn, MODEL_B, "legal matter", "ana@example.com", now)
    res = registry_retention.retire_decisions(store, now=now)
    # m1's block and m2's unheld block go; the block naming the held model stays
    assert sorted(res.blocks) == [1, 2] and res.decisions == 7
    if store.dialect == "postgresql":
        assert res.partitions == [partitions.name(*partitions.month_of(old))]
        with store.read() as conn:
            assert partitions.name(*partitions.month_of(old)) not in partitions.existing(conn)
    with store.read() as conn:
        assert decisions.count(conn) == 6
        assert decisions.get(conn, m2[3][0]).subject == "held"
    report = _verify(store)
    assert report.ok and report.retired == 2 and report.decisions == 6
    assert report.to_dict()["retired_blocks"] == 2
    again = registry_retention.retire_decisions(store, now=now)
    assert again.blocks == [] and _verify(store).ok
    # a retired id may be recorded again (its row and its claim are gone)
    assert _append(store, m1[:1]).inserted == 1


def test_decisions_deleted_without_retirement_are_still_broken(store):
    now = now_us()
    _append(store, _rows(3, now - 2 * DAY))
    _append(store, _rows(2, now - DAY))
    with store.write() as conn:
        conn.execute(sa.delete(decisions.decisions).where(decisions.decisions.c.block == 1))
    report = _verify(store)
    assert not report.ok and report.first_broken.block == 1
    assert report.first_broken.reason == "all 3 decisions of the block are gone"


def test_a_forged_retirement_is_named_by_verify(store):
    """Deleting a block's decisions and inserting a retired_blocks row by hand: the row was
    never sealed, so verify names it."""
    from modelward.ledger.schema import retired_blocks

    now = now_us()
    _append(store, _rows(3, now - DAY))
    with store.write() as conn:
        conn.execute(sa.delete(decisions.decisions))
        conn.execute(retired_blocks.insert().values(block=1, at=now, before_at=now,
                                                    method="rows"))
    report = _verify(store)
    assert not report.ok
    assert any(r["kind"] == "retired_blocks" and r["problem"] == "inserted"
               for p in report.problems for r in p.records)


def test_a_signed_checkpoint_still_verifies_after_retention_retires_blocks_it_covers(
        store, tmp_path):
    """A checkpoint counts the decisions its blocks sealed; retention dropping whole blocks
    under it later is no tampering (the retirement is chained), deleting one decision is."""
    from modelward.ledger import checkpoints

    from .test_heads import keys as make_keys

    key = make_keys(tmp_path, sign=True)
    now = now_us()
    old = now - (store.settings.retention // DAY + 120) * DAY
    for block in (_rows(4, old, model_digest=MODEL_A), _rows(3, now - DAY)):
        _append(store, block)
    with store.read() as conn:
        report = checkpoints.verify(conn, key, full=True)
    assert report.ok
    with store.write() as conn:
        cp = checkpoints.store(conn, report, key)
    assert cp.decisions == 7
    assert registry_retention.retire_decisions(store, now=now).decisions == 4
    with store.read() as conn:
        after = checkpoints.verify(conn, key)
    assert after.ok, after.problems
    assert after.checkpoint is not None  # it started from the checkpoint
    with store.write() as conn:  # a decision under the checkpoint deleted by hand: caught
        conn.execute(decisions_table.delete().where(decisions_table.c.id == conn.execute(
            sa.select(decisions_table.c.id).limit(1)).scalar()))
    with store.read() as conn:
        broken = checkpoints.verify(conn, key)
    assert not broken.ok
    assert any("were deleted or inserted" in p.reason for p in broken.problems)


def _race(store, *batches, on_conflict="raise"):
    """Append ``batches`` from as many threads at once (each its own transaction; PostgreSQL
    claims ids before the chain's lock); returns each thread's result or exception."""
    import threading

    start = threading.Barrier(len(batches))
    out: list = [None] * len(batches)

    def run(i, rows):
        start.wait()
        try:
            out[i] = decisions.append(store, rows, on_conflict=on_conflict)
        except Exception as exc:  # noqa: BLE001  (the test judges it)
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def test_writers_resending_overlapping_ids_at_once_record_each_once(store):
    """Two writers send overlapping batches at the same moment, one in reverse order: each
    id is written once (a claim held by the other writer waits for its commit, then counts
    as a duplicate), claims in id order never deadlock, and the chain verifies."""
    _pg_only(store)
    rows = _rows(3000, now_us() - DAY)
    a, b = _race(store, rows[:2000], list(reversed(rows[1000:])))
    assert not isinstance(a, Exception) and not isinstance(b, Exception), (a, b)
    assert a.inserted + b.inserted == 3000 and a.duplicates + b.duplicates == 1000
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions_table)).scalar() \
            == 3000
    assert _verify(store).ok


def test_a_changed_resend_racing_the_original_is_a_conflict(store):
    """The same ids with other content sent at the same moment: one batch is recorded, the
    other is refused whole as an id conflict (and with ``report``, named), never mixed."""
    _pg_only(store)
    at = now_us() - DAY
    first, changed = _rows(500, at, model_digest=MODEL_A), _rows(500, at, model_digest=MODEL_B)
    changed = [f[:1] + c[1:] for f, c in zip(first, changed, strict=True)]  # the same ids
    results = _race(store, first, changed)
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and won[0].inserted == 500
    assert len(lost) == 1 and isinstance(lost[0], IdConflictError)
    with store.read() as conn:
        models = set(conn.execute(sa.select(decisions_table.c.model_digest)).scalars())
    assert len(models) == 1
    # reported instead of raised: nothing written, every id named
    res = decisions.append(store, changed if models == {MODEL_A} else first,
                           on_conflict="report")
    assert res.inserted == 0 and len(res.conflicts) == 500
    assert _verify(store).ok


def test_the_late_lock_path_writes_the_gate_sums_a_block_seal_writes(store):
    """The recorder's pipelined seal writes the rollups with MW502's gate sums, equal to
    what the back-fill computes from the decisions."""
    _pg_only(store)
    from modelward.ledger import rollups

    now = now_us()
    _append(store, _rows(300, now, alias="rag/a",
                         gate={"threshold": 0.4, "candidates": 20, "passed": 7}))
    with store.read() as conn:
        kept = conn.exec_driver_sql(
            "SELECT gated, gate_passed, gate_candidates, gate_xx, gate_nn FROM decision_rollups"
        ).all()
        assert kept == [(300, 2100, 6000, 300 * 49, 300 * 400)]
        assert not rollups.verify(conn, 0, set())
