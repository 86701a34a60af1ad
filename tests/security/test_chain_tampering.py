"""An attacker with write access to the database edits, deletes, inserts or reorders a row
of any chained table: ``verify`` names the first broken block and the kind and id of each
broken record, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import modelward
from modelward.ledger import chain, records
from modelward.ledger.schema import chain_blocks, chain_leaves
from tests.conftest import database_url
from tests.ledger import chain_world

KINDS = sorted(records.RECORD_KINDS)
# a table whose every column is its key is a set: swapping two rows changes nothing
REORDERABLE = [k for k in KINDS
               if set(records.RECORD_KINDS[k].columns) - set(records.RECORD_KINDS[k].key)]


@pytest.fixture(params=["sqlite-file", "postgres"])
def world(request, tmp_path):
    led = modelward.open(str(tmp_path / "home"),
                         database_url=database_url(request.param, tmp_path, request))
    chain_world.build(led.store)
    yield led
    led.close()


def _two_rows(conn, k: records.RecordKind):
    t = k.table
    q = sa.select(t).order_by(*[t.c[c] for c in k.key])
    if k.where is not None:
        q = q.where(k.where(t))
    rows = [dict(r._mapping) for r in conn.execute(q).all()]
    assert len(rows) >= 2, k.kind
    return rows[0], rows[1]


def _where_key(k: records.RecordKind, row: dict):
    return sa.and_(*[k.table.c[c] == row[c] for c in k.key])


def _show(k: records.RecordKind, row: dict):
    key = [row[c] for c in k.key]
    return key[0] if len(key) == 1 else key


def _changed(column: sa.Column, value):
    t = column.type
    if isinstance(t, sa.Boolean):
        return not value
    if isinstance(t, sa.Integer):
        return (value or 0) + 7
    if isinstance(t, sa.String) and t.length and t.length <= 71 and str(value).startswith("sha256:"):
        return "sha256:" + "e" * 64
    if isinstance(t, (sa.String, sa.Text)):
        return "tampered"
    return (value or 0.0) + 1.5  # a float


def _newest_block(conn, kind: str, key) -> int:
    key_json = records._key_json(records.RECORD_KINDS[kind], key)
    return conn.execute(sa.select(sa.func.max(chain_leaves.c.block)).where(
        chain_leaves.c.kind == kind, chain_leaves.c.key == key_json)).scalar()


def _broken(report) -> dict:
    return {(r["kind"], str(r["id"])): r["problem"] for p in report.problems for r in p.records}


@pytest.mark.parametrize("op", ["edit", "delete", "insert", "reorder"])
@pytest.mark.parametrize("kind", KINDS)
def test_tampering_with_any_chained_row_is_named(world, kind, op):
    if op == "reorder" and kind not in REORDERABLE:
        pytest.skip(f"{kind} rows are their keys only: a set has no order")
    k = records.RECORD_KINDS[kind]
    t = k.table
    store = world.store
    with store.read() as conn:
        assert chain.verify(conn).ok
        a, b = _two_rows(conn, k)
        block_a = _newest_block(conn, kind, [a[c] for c in k.key])
        block_b = _newest_block(conn, kind, [b[c] for c in k.key])
    values = [c for c in k.columns if c not in k.key]
    with store.engine.begin() as conn:  # straight to the database, as an attacker would
        if op == "edit":
            col = values[0] if values else k.key[-1]
            conn.execute(t.update().where(_where_key(k, a))
                         .values({col: _changed(t.c[col], a[col])}))
        elif op == "delete":
            conn.execute(t.delete().where(_where_key(k, a)))
        elif op == "insert":
            new = dict(a)
            col = k.key[-1]
            new[col] = _changed(t.c[col], a[col]) if col != "decision_id" else \
                "00000000-0000-7000-8000-0000000000ff"
            conn.execute(t.insert().values(new))
        else:
            conn.execute(t.update().where(_where_key(k, a)).values({c: b[c] for c in values}))
            conn.execute(t.update().where(_where_key(k, b)).values({c: a[c] for c in values}))
    with store.read() as conn:
        report = chain.verify(conn)
    assert not report.ok
    broken = _broken(report)
    if op == "edit" and not values:  # a row that is all key: an edit moves it to a new key
        assert broken[(kind, str(_show(k, a)))] == "deleted"
        assert sorted(broken.values()) == ["deleted", "inserted"]
        assert report.first_broken.block == block_a
    elif op == "edit":
        assert broken == {(kind, str(_show(k, a))): "edited"}
        assert report.first_broken.block == block_a
    elif op == "delete":
        assert broken == {(kind, str(_show(k, a))): "deleted"}
        assert report.first_broken.block == block_a
    elif op == "insert":
        [(got_kind, _id)] = broken
        assert got_kind == kind and broken[(got_kind, _id)] == "inserted"
        assert report.first_broken.block is None
        assert report.first_broken.reason == "records that no block ever sealed"
    else:
        assert broken == {(kind, str(_show(k, a))): "edited", (kind, str(_show(k, b))): "edited"}
        assert report.first_broken.block == min(block_a, block_b)
    assert report.decisions == 3  # the decisions themselves still verify
    assert all(not p.decision_ids for p in report.problems)


def test_editing_or_reordering_the_sealed_leaves_breaks_their_block(world):
    store = world.store
    with store.read() as conn:
        block = conn.execute(sa.select(chain_blocks.c.number)
                             .where(chain_blocks.c.records >= 2).limit(1)).scalar()
        leaves = conn.execute(sa.select(chain_leaves).where(chain_leaves.c.block == block)
                              .order_by(chain_leaves.c.pos)).all()
    first, second = leaves[0], leaves[1]
    with store.engine.begin() as conn:  # swap the two leaves' places in the block
        for row, pos in ((first, -1), (second, first.pos), (first, second.pos)):
            conn.execute(chain_leaves.update().where(chain_leaves.c.block == block,
                                                     chain_leaves.c.key == row.key,
                                                     chain_leaves.c.kind == row.kind)
                         .values(pos=pos))
    with store.read() as conn:
        report = chain.verify(conn)
    assert report.first_broken.block == block
    assert report.first_broken.reason == "records do not match the sealed root"
    with store.engine.begin() as conn:  # a row and its leaf rewritten together
        conn.execute(chain_leaves.delete().where(chain_leaves.c.block == block))
    with store.read() as conn:
        report = chain.verify(conn)
    assert report.first_broken.block == block
    assert report.first_broken.reason.startswith(f"holds 0 records, sealed with {len(leaves)}")


def test_a_record_and_its_leaf_rewritten_together_break_the_block(world):
    """Re-hashing the edited row into its leaf does not help: the block's root covers it."""
    store = world.store
    k = records.RECORD_KINDS["alias_events"]
    with store.read() as conn:
        a, _b = _two_rows(conn, k)
    with store.engine.begin() as conn:
        conn.execute(k.table.update().where(k.table.c.id == a["id"])
                     .values(digest="sha256:" + "e" * 64))
        [(kind, key, leaf)] = records._leaves_for(conn, "alias_events", [a["id"]])
        conn.execute(chain_leaves.update().where(chain_leaves.c.kind == kind,
                                                 chain_leaves.c.key == key).values(leaf=leaf))
    with store.read() as conn:
        report = chain.verify(conn)
    assert not report.ok
    assert report.first_broken.reason == "records do not match the sealed root"
    assert {"kind": "alias_events", "id": a["id"], "problem": "in a broken block"} in \
        report.first_broken.records
