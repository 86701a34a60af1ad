"""Signed checkpoints: verify recomputes only the blocks after the newest valid one, catches
every attack on what is newer and on the checkpoints themselves, and says honestly what only
``full`` catches (an in-place edit of a row the checkpoint covers)."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from modelward.errors import ConfigError
from modelward.ledger import checkpoints, decisions, heads
from modelward.ledger.schema import chain_blocks, chain_checkpoints, decision_rollups
from modelward.ledger.schema import decisions as decisions_table
from modelward.registry import parallel_verify

from . import test_chain
from .test_chain import BLOCKS, PER_BLOCK, T, block_ids, execute, rewrite_consistently
from .test_heads import keys as make_keys

blocks = test_chain.blocks  # the fixture


@pytest.fixture
def key(tmp_path) -> heads.Keys:
    return make_keys(tmp_path, sign=True)


def verify(store, keys, **kw):
    with store.read() as conn:
        return checkpoints.verify(conn, keys, **kw)


def checkpoint(store, keys, **kw) -> checkpoints.Checkpoint:
    report = verify(store, keys, **kw)
    assert report.ok, report.problems
    with store.write() as conn:
        return checkpoints.store(conn, report, keys)


def add_blocks(store, n: int = 2) -> list[list[str]]:
    out = []
    for b in range(n):
        rows = [decisions.normalize({"at": T + 10_000 + b * 100 + i, "subject": f"n{i}"})[0]
                for i in range(PER_BLOCK)]
        decisions.append(store, rows)
        out.append([r[0] for r in rows])
    return out


def reasons(report) -> list[str]:
    return [p.reason for p in report.problems]


def test_verify_starts_after_the_newest_checkpoint(store, blocks, key):
    cp = checkpoint(store, key)
    assert (cp.number, cp.block, cp.decisions, cp.full, cp.base) == (1, BLOCKS,
                                                                     BLOCKS * PER_BLOCK, True, None)
    add_blocks(store, 2)
    report = verify(store, key)
    assert report.ok and report.checkpoint["number"] == 1
    assert (report.blocks, report.decisions) == (2, 2 * PER_BLOCK)  # only what is new
    assert report.all_decisions == (BLOCKS + 2) * PER_BLOCK and report.head_block == BLOCKS + 2
    full = verify(store, key, full=True)
    assert full.ok and full.checkpoint is None and full.head_root == report.head_root
    assert full.rows == report.rows
    # a checkpoint made from the incremental run builds on the first, keeps its full_at
    cp2 = checkpoint(store, key)
    assert (cp2.number, cp2.block, cp2.full, cp2.base, cp2.full_at) == (2, BLOCKS + 2, False,
                                                                         1, cp.full_at)
    assert verify(store, key).checkpoint["number"] == 2
    assert verify(store, key).blocks == 0


def test_hmac_checkpoints(store, blocks, tmp_path, monkeypatch):
    k = make_keys(hmac="s3cret", monkeypatch=monkeypatch)
    cp = checkpoint(store, k)
    assert cp.signer == "hmac-sha256"
    assert verify(store, k).checkpoint["number"] == cp.number


def test_no_key_no_checkpoint(store, blocks):
    report = verify(store, heads.Keys())
    assert report.ok and report.checkpoint is None and report.blocks == BLOCKS
    assert "all history was verified" in report.notes[0]
    with store.write() as conn, pytest.raises(ConfigError, match="must be signed"):
        checkpoints.store(conn, report, heads.Keys())


def test_a_new_decision_edited_after_the_checkpoint_is_caught(store, blocks, key):
    checkpoint(store, key)
    new = add_blocks(store, 2)
    execute(store, decisions_table.update().where(decisions_table.c.id == new[1][2])
            .values(subject="edited"))
    report = verify(store, key)
    assert not report.ok and report.first_broken.block == BLOCKS + 2
    assert new[1][2] in report.first_broken.decision_ids


def test_an_old_decision_edited_in_place_needs_full(store, blocks, key):
    """The documented limit: a checkpoint vouches for what it covers; an in-place edit of a
    covered row (same count, same block roots) shows only in a full verification."""
    checkpoint(store, key)
    add_blocks(store, 1)
    execute(store, decisions_table.update().where(decisions_table.c.id == blocks[1][0])
            .values(subject="edited"))
    assert verify(store, key).ok
    full = verify(store, key, full=True)
    assert not full.ok and full.first_broken.block == 2
    assert blocks[1][0] in full.first_broken.decision_ids


def test_an_old_decision_deleted_or_inserted_is_caught(store, blocks, key):
    checkpoint(store, key)
    add_blocks(store, 1)
    with store.read() as conn:
        row = conn.execute(sa.select(decisions_table)
                           .where(decisions_table.c.id == blocks[0][0])).mappings().first()
    execute(store, decisions_table.delete().where(decisions_table.c.id == blocks[0][0]))
    report = verify(store, key)
    assert not report.ok and report.first_broken.block == BLOCKS
    assert "decisions it covers were deleted or inserted" in report.first_broken.reason
    # put it back, then insert a copy under another id into an old block
    execute(store, decisions_table.insert().values(**row))
    assert verify(store, key).ok
    forged = dict(row, id="0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70", pos=99)
    execute(store, decisions_table.insert().values(**forged))
    assert "deleted or inserted" in verify(store, key).first_broken.reason


def test_reordered_rows(store, blocks, key):
    checkpoint(store, key)
    new = add_blocks(store, 1)

    def swap(ids):
        with store.write() as conn:
            t = decisions_table
            a, b = (conn.execute(sa.select(t.c.pos).where(t.c.id == i)).scalar() for i in ids)
            conn.execute(t.update().where(t.c.id == ids[0]).values(pos=-1))
            conn.execute(t.update().where(t.c.id == ids[1]).values(pos=a))
            conn.execute(t.update().where(t.c.id == ids[0]).values(pos=b))

    swap(new[0][:2])  # after the checkpoint: caught
    assert verify(store, key).first_broken.block == BLOCKS + 1
    swap(new[0][:2])
    assert verify(store, key).ok
    swap(blocks[0][:2])  # before it: only a full verification recomputes that block
    assert verify(store, key).ok
    assert verify(store, key, full=True).first_broken.block == 1
    assert block_ids(store, 1)[:2] == [blocks[0][1], blocks[0][0]]


def test_a_consistent_rewrite_under_the_checkpoint_is_caught(store, blocks, key):
    """Re-sealing every block from an edited one on fools a plain verify, but not the root
    the checkpoint signed."""
    checkpoint(store, key)
    add_blocks(store, 1)
    rewrite_consistently(store, blocks[1][0])
    assert verify(store, heads.Keys()).ok  # no key: the rewrite is consistent
    report = verify(store, key)
    assert not report.ok and report.first_broken.block == BLOCKS
    assert "root differs from the one signed by checkpoint 1" in report.first_broken.reason


def test_truncated_blocks(store, blocks, key):
    checkpoint(store, key)
    add_blocks(store, 2)
    # newest blocks after the checkpoint deleted: only an exported head proves that
    execute(store, decisions_table.delete().where(decisions_table.c.block == BLOCKS + 2))
    execute(store, chain_blocks.delete().where(chain_blocks.c.number == BLOCKS + 2))
    # (the block's rollups left behind would give it away: a thorough attacker drops them)
    assert not verify(store, key).ok
    execute(store, decision_rollups.delete().where(decision_rollups.c.block == BLOCKS + 2))
    assert verify(store, key).ok
    # down past the checkpoint's block: caught
    for n in (BLOCKS + 1, BLOCKS):
        execute(store, decisions_table.delete().where(decisions_table.c.block == n))
        execute(store, chain_blocks.delete().where(chain_blocks.c.number == n))
    report = verify(store, key)
    assert not report.ok
    assert f"block {BLOCKS}, covered by signed checkpoint 1, is gone" in reasons(report)[0]


def _rows(store):
    with store.read() as conn:
        return conn.execute(sa.select(chain_checkpoints)
                            .order_by(chain_checkpoints.c.number)).all()


def test_forged_or_altered_checkpoints_are_caught(store, blocks, key, tmp_path):
    checkpoint(store, key)
    add_blocks(store, 1)
    execute(store, decisions_table.update().where(decisions_table.c.id == blocks[1][0])
            .values(subject="edited"))
    row = _rows(store)[0]
    # the attacker moves the checkpoint past the edit... without the key
    body = orjson.loads(row.body)
    body.update(block=BLOCKS + 1, decisions=(BLOCKS + 1) * PER_BLOCK)
    with store.read() as conn:
        body["root"] = conn.execute(sa.select(chain_blocks.c.root)
                                    .where(chain_blocks.c.number == BLOCKS + 1)).scalar()
    execute(store, chain_checkpoints.insert().values(
        number=2, block=BLOCKS + 1, body=orjson.dumps(body).decode(), signature=row.signature))
    report = verify(store, key)
    assert not report.ok and report.checkpoint is None  # everything recomputed
    assert "checkpoint 2 is not to be trusted: its Ed25519 signature does not match" \
        in " ".join(reasons(report))
    assert any(blocks[1][0] in p.decision_ids for p in report.problems)  # and the edit shows
    # an unsigned one, and one with a made-up scheme
    execute(store, chain_checkpoints.update().where(chain_checkpoints.c.number == 2)
            .values(signature=""))
    assert "it is unsigned" in " ".join(reasons(verify(store, key)))
    execute(store, chain_checkpoints.update().where(chain_checkpoints.c.number == 2)
            .values(signature="rot13:abc"))
    assert "scheme 'rot13' is unknown" in " ".join(reasons(verify(store, key)))
    # signed by a key not configured here (another team's, or before a rotation): skipped
    (tmp_path / "other").mkdir()
    other = make_keys(tmp_path / "other", sign=True)
    execute(store, chain_checkpoints.update().where(chain_checkpoints.c.number == 2)
            .values(signature=checkpoints.sign(orjson.dumps(body), other)))
    report = verify(store, key)
    assert report.notes[0].startswith("checkpoint 2 (block 5) skipped: signed by Ed25519 key")
    assert report.checkpoint["number"] == 1 and report.ok  # the in-place edit: --full only


def test_deleting_checkpoints_only_makes_verify_start_earlier(store, blocks, key):
    checkpoint(store, key)
    add_blocks(store, 1)
    checkpoint(store, key)
    execute(store, chain_checkpoints.delete().where(chain_checkpoints.c.number == 2))
    report = verify(store, key)
    assert report.ok and report.checkpoint["number"] == 1 and report.blocks == 1
    execute(store, chain_checkpoints.delete())
    report = verify(store, key)
    assert report.ok and report.checkpoint is None and report.blocks == BLOCKS + 1


def test_parallel_verify_from_a_checkpoint(store, blocks, key):
    checkpoint(store, key)
    new = add_blocks(store, 4)
    with store.read() as conn:
        report = parallel_verify.verify(conn, workers=2, keys=key, full=False)
    assert report.ok and report.decisions == 4 * PER_BLOCK
    execute(store, decisions_table.update().where(decisions_table.c.id == new[3][0])
            .values(subject="edited"))
    with store.read() as conn:
        report = parallel_verify.verify(conn, workers=2, keys=key, full=False)
    assert [p.block for p in report.problems] == [BLOCKS + 4]
