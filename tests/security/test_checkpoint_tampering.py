"""Chained records and signed checkpoints: verification from a checkpoint catches a row of
any chained table deleted or inserted anywhere (the signed row counts), every edit of a
record written after the checkpoint, and a tampered leaf after it; an in-place edit of a row
the checkpoint covers is caught by ``full`` only (the documented limit)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelward.ledger import aliases, checkpoints, records
from modelward.ledger.schema import chain_leaves
from tests.ledger.test_heads import keys as make_keys
from tests.security.test_chain_tampering import (
    KINDS,
    _broken,
    _changed,
    _show,
    _two_rows,
    _where_key,
    world,  # noqa: F401 - the fixture
)


@pytest.fixture
def key(tmp_path):
    return make_keys(tmp_path, sign=True)


def _verify(store, key, **kw):
    with store.read() as conn:
        return checkpoints.verify(conn, key, **kw)


def _checkpoint(store, key):
    report = _verify(store, key)
    with store.write() as conn:
        return checkpoints.store(conn, report, key)


@pytest.mark.parametrize("op", ["edit", "delete", "insert"])
@pytest.mark.parametrize("kind", KINDS)
def test_old_rows_of_any_table(world, key, kind, op):  # noqa: F811
    store = world.store
    cp = _checkpoint(store, key)
    k = records.RECORD_KINDS[kind]
    t = k.table
    with store.read() as conn:
        a, _b = _two_rows(conn, k)
    values = [c for c in k.columns if c not in k.key]
    with store.engine.begin() as conn:
        if op == "edit" and values:
            conn.execute(t.update().where(_where_key(k, a))
                         .values({values[0]: _changed(t.c[values[0]], a[values[0]])}))
        elif op == "delete":
            conn.execute(t.delete().where(_where_key(k, a)))
        else:  # an insert (or an edit of a row that is all key: a new key)
            new = dict(a)
            col = k.key[-1]
            new[col] = _changed(t.c[col], a[col]) if col != "decision_id" else \
                "00000000-0000-7000-8000-0000000000ff"
            conn.execute(t.insert().values(new))
    report = _verify(store, key)
    assert report.checkpoint["number"] == cp.number and report.blocks == 0
    full = _verify(store, key, full=True)
    assert not full.ok
    if op == "edit" and values:
        assert report.ok  # covered by the checkpoint: only --full recomputes it
        assert _broken(full) == {(kind, str(_show(k, a))): "edited"}
        return
    assert not report.ok
    how = "deleted" if op == "delete" else "inserted"
    assert report.first_broken.block == cp.block
    assert report.first_broken.reason.startswith(f"{kind} holds ")
    assert f"rows were {how} without being sealed" in report.first_broken.reason


def test_records_written_after_the_checkpoint(world, key):  # noqa: F811
    store = world.store
    _checkpoint(store, key)
    digest = _any_digest(store)
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v2", digest, actor="ana@example.com")
        aliases.set_alias(conn, "chat/v3", digest, actor="ana@example.com")
    report = _verify(store, key)
    assert report.ok and report.blocks == 2 and report.records == 2
    k = records.RECORD_KINDS["alias_events"]
    with store.read() as conn:
        new = conn.execute(sa.select(k.table.c.id).where(k.table.c.alias.in_(
            ["chat/v2", "chat/v3"])).order_by(k.table.c.id)).scalars().all()
    with store.engine.begin() as conn:
        conn.execute(k.table.update().where(k.table.c.id == new[0]).values(reason="edited"))
        conn.execute(k.table.delete().where(k.table.c.id == new[1]))
    report = _verify(store, key)
    assert _broken(report) == {("alias_events", str(new[0])): "edited",
                               ("alias_events", str(new[1])): "deleted"}
    # named by their leaves; the counts agree (a deleted row written since is no old row)
    assert {p.reason for p in report.problems} == {"records differ from what the block sealed"}


def test_a_leaf_after_the_checkpoint_rewritten(world, key):  # noqa: F811
    store = world.store
    _checkpoint(store, key)
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v2", _any_digest(store), actor="ana@example.com")
    with store.read() as conn:
        block = conn.execute(sa.select(sa.func.max(chain_leaves.c.block))).scalar()
    with store.engine.begin() as conn:
        conn.execute(chain_leaves.update().where(chain_leaves.c.block == block)
                     .values(leaf="0" * 64))
    report = _verify(store, key)
    assert report.first_broken.block == block
    assert report.first_broken.reason == "records do not match the sealed root"


def _any_digest(store) -> str:
    from modelward.ledger.schema import artifacts

    with store.read() as conn:
        return conn.execute(sa.select(artifacts.c.digest).where(artifacts.c.kind == "model")
                            .limit(1)).scalar()


def test_a_row_deleted_since_then_put_back_is_inserted(world, key):  # noqa: F811
    store = world.store
    _checkpoint(store, key)
    k = records.RECORD_KINDS["holds"]
    with store.read() as conn:
        row = dict(conn.execute(sa.select(k.table).order_by(k.table.c.id).limit(1)).first()._mapping)
    with store.write() as conn:  # a deletion through the ledger: sealed as a tombstone
        conn.execute(k.table.delete().where(k.table.c.id == row["id"]))
        records.record(conn, "holds", [row["id"]])
    assert _verify(store, key).ok
    with store.engine.begin() as conn:  # put back behind the chain's back
        conn.execute(k.table.insert().values(row))
    assert _broken(_verify(store, key)) == {("holds", str(row["id"])): "inserted"}
