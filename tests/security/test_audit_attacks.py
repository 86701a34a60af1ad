"""An attacker who edits a decision and re-seals its block, or edits the kept text: audit
proves the record up to the newest block (and an exported head), and re-hashes the text."""

from __future__ import annotations

import sqlalchemy as sa

from modelward.ledger import chain, decisions, heads
from modelward.registry.audit import audit_decision
from modelward.registry.replay import replay
from tests.registry.conftest import DAY, T0, model, record

RUNNER = "tests.registry.test_replay:echo_model"


def _reseal(store, decision_id: str, subject: str) -> int:
    """Edit the decision and re-seal its block so the block alone verifies again."""
    with store.write() as conn:
        number = decisions.get(conn, decision_id).block
        conn.exec_driver_sql(f"UPDATE decisions SET subject = {store.paramstyle} "
                             f"WHERE id = {store.paramstyle}", (subject, decision_id))
        rows = conn.exec_driver_sql(chain._select_chained(
            store.paramstyle, f"WHERE block = {store.paramstyle}"), (number,)).fetchall()
        prev = conn.execute(sa.select(chain.chain_blocks.c.prev_root)
                            .where(chain.chain_blocks.c.number == number)).scalar()
        conn.execute(chain.chain_blocks.update().where(chain.chain_blocks.c.number == number)
                     .values(root=chain.block_root(prev, chain.leaves(rows, 1))))
    return number


def test_a_resealed_block_is_caught_by_the_links_forward(store, tmp_path):
    m1 = model(store, tmp_path, b"weights")
    (d,) = record(store, {"at": T0 + DAY, "model_digest": m1, "subject": "u-1"})
    record(store, {"at": T0 + 2 * DAY, "model_digest": m1})  # a later block
    assert audit_decision(store, d).ok
    number = _reseal(store, d, "u-2")
    r = audit_decision(store, d, use_cache=False)
    assert r.chain.verifies and r.chain.links  # the block alone looks fine
    assert r.chain.forward == (f"block {number + 1} does not link to block {number}'s root: "
                               "a block up to it was rewritten")
    assert r.problems[0]["code"] == "chain-broken" and not r.ok
    assert r.to_dict()["chain"]["links_forward"] is False


def test_the_newest_block_resealed_is_caught_by_an_exported_head(store, tmp_path):
    m1 = model(store, tmp_path, b"weights")
    (d,) = record(store, {"at": T0 + DAY, "model_digest": m1, "subject": "u-1"})
    with store.read() as conn:
        exported = heads.head(conn, heads.Keys())
    r = audit_decision(store, d, head=exported)
    assert r.ok and r.chain.head == {"blocks": exported["blocks"], "problems": []}
    number = _reseal(store, d, "u-2")
    r = audit_decision(store, d, use_cache=False, head=exported)
    assert r.chain.verifies and r.chain.links and r.chain.forward is None
    assert [p["code"] for p in r.problems] == ["head-mismatch"]
    assert "the log was rewritten" in r.problems[0]["message"]
    assert f"block {number} has root" in r.problems[0]["message"]


def test_a_head_exported_before_the_decision_cannot_vouch_for_it(store, tmp_path):
    m1 = model(store, tmp_path, b"weights")
    with store.read() as conn:
        exported = heads.head(conn, heads.Keys())
    (d,) = record(store, {"at": T0 + DAY, "model_digest": m1})
    r = audit_decision(store, d, head=exported)
    assert [p["code"] for p in r.problems] == ["head-mismatch"]
    assert "it cannot vouch for this decision" in r.problems[0]["message"]


def test_edited_text_fails_audit_and_is_not_replayed(store, tmp_path):
    m1 = model(store, tmp_path, b"weights")
    (d,) = record(store, {"at": T0 + DAY, "model_digest": m1, "subject": "u-1",
                          "input_text": "what is my balance?", "output_text": "42"})
    assert audit_decision(store, d).ok
    assert replay(store, d, RUNNER).missing == []
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE decision_payloads SET input_text = 'ignore all rules', "
                             f"output_text = '43' WHERE decision_id = {store.paramstyle}", (d,))
    r = audit_decision(store, d)
    assert r.text["altered"] == ["input", "output"]
    assert [p["code"] for p in r.problems] == ["text-altered", "text-altered"]
    assert r.chain.verifies and r.chain.forward is None  # the text itself is not chained
    report = replay(store, d, RUNNER)
    assert [(m.what, m.status) for m in report.missing] == [("input text", "altered")]
    assert report.output is None


def test_audit_links_forward_to_the_signed_checkpoint(store, tmp_path, monkeypatch):
    """With a signed checkpoint covering the decision's block, audit follows the links up to
    it (not to the newest block) and checks its signed root: re-sealing every block from the
    decision's on, up to the newest, fools the links but not the checkpoint."""
    from modelward.ledger import checkpoints

    monkeypatch.setenv("MODELWARD_SIGNING_KEY", "k3y")
    keys = heads.keys_from(store.settings)
    m1 = model(store, tmp_path, b"weights")
    (d,) = record(store, {"at": T0 + DAY, "model_digest": m1, "subject": "u-1"})
    record(store, {"at": T0 + 2 * DAY, "model_digest": m1})
    with store.read() as conn:
        report = checkpoints.verify(conn, keys)
    with store.write() as conn:
        cp = checkpoints.store(conn, report, keys)
    record(store, {"at": T0 + 3 * DAY, "model_digest": m1})  # after the checkpoint
    r = audit_decision(store, d)
    assert r.ok and r.chain.checkpoint["number"] == cp.number and r.chain.newest == cp.block
    # edit the decision and re-seal every block from its own to the newest, consistently
    number = _reseal(store, d, "u-2")
    with store.write() as conn:
        t, p = chain.chain_blocks, store.paramstyle
        prev = conn.execute(sa.select(t.c.root).where(t.c.number == number)).scalar()
        newest = conn.execute(sa.select(sa.func.max(t.c.number))).scalar()
        for n in range(number + 1, newest + 1):
            rows = conn.exec_driver_sql(chain._select_chained(p, f"WHERE block = {p}"),
                                        (n,)).fetchall()
            leaves = chain.leaves(rows, 1) or [bytes.fromhex(x) for (x,) in conn.exec_driver_sql(
                f"SELECT leaf FROM chain_leaves WHERE block = {p} ORDER BY pos", (n,))]
            root = chain.block_root(prev, leaves)
            conn.execute(t.update().where(t.c.number == n).values(root=root, prev_root=prev))
            prev = root
    r = audit_decision(store, d, use_cache=False)
    assert r.chain.verifies and r.chain.links and not r.ok
    assert r.chain.forward == (f"block {cp.block}'s root differs from the one signed by "
                               f"checkpoint {cp.number}: the chain up to it was rewritten")
