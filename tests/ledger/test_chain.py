"""The tamper-evident chain on every backend: each kind of edit is caught, naming the first
broken block and the decisions in it; an exported (signed) head catches a consistent rewrite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelward.ledger import chain, decisions
from modelward.ledger.schema import chain_blocks
from modelward.ledger.schema import decisions as decisions_table
from modelward.timefmt import parse_time

T = parse_time("2026-03-01T00:00:00Z")
BLOCKS, PER_BLOCK = 4, 5


@pytest.fixture
def blocks(store) -> list[list[str]]:
    """Four sealed blocks of five decisions; returns the ids of each block in position order."""
    out = []
    for b in range(BLOCKS):
        rows = [decisions.normalize({"at": T + b * 100 + i, "subject": f"u{i}",
                                     "model_digest": "sha256:" + "a" * 64,
                                     "segments": {"tier": "pro"},
                                     "gate": {"threshold": 0.25, "candidates": 9, "passed": i}})[0]
                for i in range(PER_BLOCK)]
        res = decisions.append(store, rows)
        assert res.block == b + 1
        out.append([r[0] for r in rows])
    return out


def verify(store, **kw) -> chain.VerifyReport:
    with store.read() as conn:
        return chain.verify(conn, **kw)


def verify_block(store, number):
    with store.read() as conn:
        return chain.verify_block(conn, number, store.paramstyle)


def execute(store, statement):
    with store.write() as conn:
        conn.execute(statement)


def block_ids(store, number) -> list[str]:
    with store.read() as conn:
        return list(conn.execute(sa.select(decisions_table.c.id)
                                 .where(decisions_table.c.block == number)
                                 .order_by(decisions_table.c.pos)).scalars())


def test_intact_ledger_verifies(store, blocks):
    report = verify(store)
    assert report.ok and report.problems == [] and report.first_broken is None
    assert (report.blocks, report.decisions) == (BLOCKS, BLOCKS * PER_BLOCK)
    with store.read() as conn:
        last = conn.execute(sa.select(chain_blocks).order_by(chain_blocks.c.number.desc())).first()
    assert report.head_root == last.root and len(last.root) == 64
    assert report.to_dict()["first_broken_block"] is None
    for n in range(1, BLOCKS + 1):
        assert verify_block(store, n) is None
    assert verify_block(store, BLOCKS + 1).reason == "block record is missing"


def test_empty_ledger_verifies(store):
    report = verify(store)
    assert report.ok and report.blocks == 0 and report.head_root == chain.GENESIS


def test_roots_follow_the_documented_definition(store, blocks):
    """Anyone can recompute the chain from the stored rows with the docstring's formula."""
    import hashlib

    import orjson

    cols = ", ".join(chain.CHAINED)
    prev = chain.GENESIS
    with store.read() as conn:
        for n in range(1, BLOCKS + 1):
            rows = conn.exec_driver_sql(
                f"SELECT {cols} FROM decisions WHERE block = {store.paramstyle} ORDER BY pos",
                (n,)).fetchall()
            level = [hashlib.sha256(b"\x00" + orjson.dumps(tuple(r))).digest() for r in rows]
            while len(level) > 1:
                nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
                       for i in range(0, len(level) - 1, 2)]
                level = nxt + ([level[-1]] if len(level) % 2 else [])
            root = hashlib.sha256(b"\x02" + bytes.fromhex(prev) + level[0]
                                  + len(rows).to_bytes(8, "big")).hexdigest()
            stored = conn.execute(sa.select(chain_blocks).where(chain_blocks.c.number == n)).first()
            assert (stored.root, stored.prev_root, stored.count) == (root, prev, len(rows))
            prev = root


def assert_broken(store, block, reason, ids):
    report = verify(store)
    assert not report.ok
    first = report.first_broken
    assert (first.block, first.reason, first.decision_ids) == (block, reason, ids)
    assert report.to_dict()["first_broken_block"] == block
    assert verify(store, stop_at_first=True).first_broken.block == block
    return report


def test_edited_decision(store, blocks):
    victim = blocks[1][3]
    execute(store, decisions_table.update().where(decisions_table.c.id == victim)
            .values(model_digest="sha256:" + "b" * 64))
    report = assert_broken(store, 2, "decisions do not match the sealed root", blocks[1])
    assert len(report.problems) == 1
    assert verify_block(store, 2).reason == "decisions do not match the sealed root"
    assert verify_block(store, 1) is None and verify_block(store, 3) is None


CHAINED_EDITS = [("at", T + 1), ("subject", "someone-else"), ("segments", '{"tier":"free"}'),
                 ("gate_passed", 0), ("gate_threshold", 0.5), ("recorded_at", 1),
                 ("process", "elsewhere"), ("extra", '{"a":1}'), ("alias", "chat/v2"),
                 ("vendor_fingerprint", "fp_x"), ("input_digest", "sha256:" + "c" * 64)]


def test_every_chained_column_is_covered(store, blocks):
    victim = decisions_table.c.id == blocks[2][4]
    with store.read() as conn:
        original = conn.execute(sa.select(decisions_table).where(victim)).first()._mapping
    for column, value in CHAINED_EDITS:
        execute(store, decisions_table.update().where(victim).values({column: value}))
        report = verify(store)
        assert (column, report.first_broken.block, report.first_broken.reason) == (
            column, 3, "decisions do not match the sealed root")
        execute(store, decisions_table.update().where(victim).values({column: original[column]}))
        assert verify(store).ok, column


def test_deleted_decision(store, blocks):
    execute(store, decisions_table.delete().where(decisions_table.c.id == blocks[2][0]))
    assert_broken(store, 3, "holds 4 decisions, sealed with 5", blocks[2][1:])
    assert verify_block(store, 3).reason == "holds 4 decisions, sealed with 5"


def test_inserted_into_an_existing_block(store, blocks):
    row = decisions.normalize({"at": T + 150, "subject": "forged"})[0]
    with store.write() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO decisions ({', '.join(decisions.COLUMNS)}) VALUES "
            f"({', '.join([store.paramstyle] * len(decisions.COLUMNS))})",
            [row + (T + 150, 2, 2)])  # squeezed in at position 2 of block 2
    report = verify(store)
    first = report.first_broken
    assert (first.block, first.reason) == (2, "holds 6 decisions, sealed with 5")
    # two rows now share position 2, so only the set of ids is defined
    assert sorted(first.decision_ids) == sorted(blocks[1] + [row[0]])
    assert verify(store, stop_at_first=True).first_broken.block == 2


def test_inserted_with_a_new_block_number(store, blocks):
    row = decisions.normalize({"at": T + 999, "subject": "forged"})[0]
    with store.write() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO decisions ({', '.join(decisions.COLUMNS)}) VALUES "
            f"({', '.join([store.paramstyle] * len(decisions.COLUMNS))})",
            [row + (T + 999, 7, 0)])
    assert_broken(store, 7, "decisions name a block that was never sealed", [row[0]])


def test_reordered_decisions(store, blocks):
    a, b = blocks[0][1], blocks[0][3]
    with store.write() as conn:  # swap two positions
        conn.execute(decisions_table.update().where(decisions_table.c.id == a).values(pos=3))
        conn.execute(decisions_table.update().where(decisions_table.c.id == b).values(pos=1))
    swapped = [blocks[0][0], b, blocks[0][2], a, blocks[0][4]]
    assert_broken(store, 1, "decisions do not match the sealed root", swapped)


def test_decision_moved_to_another_block(store, blocks):
    execute(store, decisions_table.update().where(decisions_table.c.id == blocks[3][0])
            .values(block=3, pos=5))
    report = assert_broken(store, 3, "holds 6 decisions, sealed with 5", blocks[2] + [blocks[3][0]])
    assert [p.block for p in report.problems] == [3, 4]


def test_deleted_chain_block_row(store, blocks):
    execute(store, chain_blocks.delete().where(chain_blocks.c.number == 2))
    report = verify(store)
    assert not report.ok and report.first_broken.block == 2
    assert report.first_broken.reason == "block 2 is missing (next is 3)"
    assert any(p.block == 2 and p.reason == "decisions name a block that was never sealed"
               and p.decision_ids == blocks[1] for p in report.problems)
    assert verify_block(store, 2).reason == "block record is missing"


def test_deleted_last_chain_block_row(store, blocks):
    execute(store, chain_blocks.delete().where(chain_blocks.c.number == BLOCKS))
    assert_broken(store, BLOCKS, "decisions name a block that was never sealed", blocks[-1])


def test_edited_chain_block_row(store, blocks):
    where = chain_blocks.c.number == 2
    with store.read() as conn:
        original = conn.execute(sa.select(chain_blocks).where(where)).first()._mapping
    for column, value, reason in [("root", "f" * 64, "decisions do not match the sealed root"),
                                  ("count", 4, "holds 5 decisions, sealed with 4"),
                                  ("prev_root", "e" * 64, "does not link to the previous block's root")]:
        execute(store, chain_blocks.update().where(where).values({column: value}))
        report = verify(store)
        assert not report.ok and report.first_broken.block == 2
        assert any(p.block == 2 and p.reason == reason for p in report.problems), column
        assert verify_block(store, 2) is not None
        execute(store, chain_blocks.update().where(where).values({column: original[column]}))
        assert verify(store).ok


def test_a_sealed_block_whose_decisions_are_all_gone(store, blocks):
    execute(store, decisions_table.delete().where(decisions_table.c.block == 4))
    report = verify(store)
    assert report.first_broken.block == 4
    assert report.first_broken.reason == "all 5 decisions of the block are gone"


def rewrite_consistently(store, victim: str) -> None:
    """What an attacker with database access and the source code does: edit a decision and
    re-seal every block from its block on, so verify() passes again."""
    with store.write() as conn:
        conn.execute(decisions_table.update().where(decisions_table.c.id == victim)
                     .values(subject="rewritten"))
        number = conn.execute(sa.select(decisions_table.c.block)
                              .where(decisions_table.c.id == victim)).scalar()
        prev = conn.execute(sa.select(chain_blocks.c.prev_root)
                            .where(chain_blocks.c.number == number)).scalar()
        cols = ", ".join(chain.CHAINED)
        last = conn.execute(sa.select(sa.func.max(chain_blocks.c.number))).scalar()
        for n in range(number, last + 1):
            rows = conn.exec_driver_sql(f"SELECT {cols} FROM decisions WHERE block = "
                                        f"{store.paramstyle} ORDER BY pos", (n,)).fetchall()
            root = chain.block_root(prev, [chain.leaf(tuple(r)) for r in rows])
            conn.execute(chain_blocks.update().where(chain_blocks.c.number == n)
                         .values(root=root, prev_root=prev))
            prev = root


def test_verify_while_writers_append_never_cries_wolf(store, blocks):
    """verify() on a live ledger sees one consistent snapshot: a block sealed while it runs
    is either wholly in it or wholly absent, never 'decisions of an unsealed block'."""
    import threading
    import time

    stop = threading.Event()
    errors: list[BaseException] = []
    appended = [0]

    def writer():
        try:
            while not stop.is_set():
                decisions.append(store, [decisions.normalize({"subject": "live"})[0]
                                         for _ in range(10)])
                appended[0] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        # Verify at least 60 times and until the writers have sealed blocks in between
        # (a loaded machine may not schedule them at first); bounded in time.
        reports = []
        deadline = time.monotonic() + 60
        while (len(reports) < 60 or appended[0] < 3) and time.monotonic() < deadline:
            reports.append(verify(store))
            time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert [r.problems for r in reports if not r.ok] == []
    assert reports[-1].blocks > BLOCKS and verify(store).ok
