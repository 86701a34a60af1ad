"""MW103 chain-broken."""

import sqlalchemy as sa

from modelward.ledger import decisions as ledger_decisions
from modelward.ledger.schema import decisions


def _ids_of_block(ledger, number):
    with ledger.store.read() as conn:
        return list(conn.execute(sa.select(decisions.c.id).where(decisions.c.block == number)
                                 .order_by(decisions.c.pos)).scalars())


def _decision_blocks(ledger):
    """The numbers of the blocks that hold decisions (the others hold chained records)."""
    with ledger.store.read() as conn:
        return list(conn.execute(sa.select(decisions.c.block).distinct()
                                 .order_by(decisions.c.block)).scalars())


def test_MW103_fires_when_a_recorded_decision_is_edited(ledger, fleet, findings):
    third = _decision_blocks(ledger)[2]
    ids = _ids_of_block(ledger, third)
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.id == ids[4])
                     .values(model_digest=fleet["v4"]))
    [f] = findings("MW103")
    assert f.subject == f"block {third}" and f.severity == "error"
    assert f.message == (f"the decision log fails verification at block {third} (the first "
                         "broken block): decisions do not match the sealed root")
    assert f.evidence["first_broken_block"] == third and f.evidence["decision_ids"] == ids[:20]
    assert f.evidence["decision_count"] == len(ids)


def test_MW103_fires_for_each_broken_block_naming_the_first(ledger, fleet, findings):
    second, fourth = _decision_blocks(ledger)[1::2][:2]
    gone = _ids_of_block(ledger, fourth)[0]
    with ledger.store.write() as conn:
        conn.execute(decisions.delete().where(decisions.c.id == gone))
        conn.execute(decisions.update().where(decisions.c.block == second)
                     .values(process="someone-else"))
    found = findings("MW103", examples=2)
    assert [f.subject for f in found] == [f"block {second}", f"block {fourth}"]
    assert found[1].evidence["reason"] == "holds 49 decisions, sealed with 50"
    assert f"(first broken block {second})" in found[1].message
    assert all(len(f.evidence["decision_ids"]) == 2 for f in found)


def test_MW103_clean_on_a_realistic_ledger_after_erasure(ledger, fleet, findings):
    # erasing a person's text leaves the chained record intact
    assert ledger_decisions.erase_subject(ledger.store, "u3") > 0
    assert findings("MW103") == []


def _checkpoint(ledger):
    from modelward.ledger import checkpoints, heads

    keys = heads.keys_from(ledger.settings)
    with ledger.store.read() as conn:
        report = checkpoints.verify(conn, keys)
    with ledger.store.write() as conn:
        return checkpoints.store(conn, report, keys)


def test_MW103_from_a_signed_checkpoint(ledger, fleet, findings, monkeypatch):
    """With a key, MW103 recomputes only the blocks after the newest checkpoint: a new
    block edited fires, an old one edited in place needs `verify --full` (documented), and a
    forged checkpoint fires."""
    from modelward.ledger.schema import chain_checkpoints

    monkeypatch.setenv("MODELWARD_SIGNING_KEY", "k3y")
    first = _decision_blocks(ledger)[0]
    cp = _checkpoint(ledger)
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.block == first)
                     .values(process="someone-else"))
    assert findings("MW103") == []  # covered by the checkpoint: `verify --full` only
    rows = [ledger_decisions.normalize({"at": 1, "subject": "late"})[0]]
    new_block = ledger_decisions.append(ledger.store, rows).block
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.block == new_block)
                     .values(process="someone-else"))
    [f] = findings("MW103")
    assert f.subject == f"block {new_block}"
    assert f.evidence["from_checkpoint"]["number"] == cp.number and f.evidence["blocks"] == 1
    with ledger.store.write() as conn:
        conn.execute(chain_checkpoints.update().values(signature="hmac-sha256:00"))
    found = findings("MW103")
    assert [f.subject for f in found] == [f"block {first}", f"block {cp.block}",
                                          f"block {new_block}"]
    assert "checkpoint 1 is not to be trusted" in found[1].message
