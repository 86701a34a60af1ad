"""MW103 chain-broken."""

import sqlalchemy as sa

from modelward.ledger import decisions as ledger_decisions
from modelward.ledger.schema import decisions


def _ids_of_block(ledger, number):
    with ledger.store.read() as conn:
        return list(conn.execute(sa.select(decisions.c.id).where(decisions.c.block == number)
                                 .order_by(decisions.c.pos)).scalars())


def test_MW103_fires_when_a_recorded_decision_is_edited(ledger, fleet, findings):
    ids = _ids_of_block(ledger, 3)
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.id == ids[4])
                     .values(model_digest=fleet["v4"]))
    [f] = findings("MW103")
    assert f.subject == "block 3" and f.severity == "error"
    assert f.message == ("the decision log fails verification at block 3 (the first broken "
                         "block): decisions do not match the sealed root")
    assert f.evidence["first_broken_block"] == 3 and f.evidence["decision_ids"] == ids[:20]
    assert f.evidence["decision_count"] == len(ids)


def test_MW103_fires_for_each_broken_block_naming_the_first(ledger, fleet, findings):
    gone = _ids_of_block(ledger, 4)[0]
    with ledger.store.write() as conn:
        conn.execute(decisions.delete().where(decisions.c.id == gone))
        conn.execute(decisions.update().where(decisions.c.block == 2)
                     .values(process="someone-else"))
    found = findings("MW103", examples=2)
    assert [f.subject for f in found] == ["block 2", "block 4"]
    assert found[1].evidence["reason"] == "holds 49 decisions, sealed with 50"
    assert "(first broken block 2)" in found[1].message
    assert all(len(f.evidence["decision_ids"]) == 2 for f in found)


def test_MW103_clean_on_a_realistic_ledger_after_erasure(ledger, fleet, findings):
    # erasing a person's text leaves the chained record intact
    assert ledger_decisions.erase_subject(ledger.store, "u3") > 0
    assert findings("MW103") == []
