"""MW206 unreviewed-alias-move: protected aliases moved around their promotion (by hand or
by a recorded break-glass), and aliases moved by people not active in the roster."""

from __future__ import annotations

from modelward.ledger import aliases, people
from modelward.registry import promotion, protection
from tests.registry.promotion_world import (
    ALICE,
    BOB,
    CAROL,
    DANA,
    ROSTER,
    eval_run,
    opens,
    set_roles,
)

from .builders import DAY, HOUR, MIN, NOW, T0, move, put

QA = b'{"id": "a", "input": {"q": "2+2"}, "expected": "4"}\n'


def test_MW206_fires_for_hand_moves_break_glass_and_movers_off_the_roster(ledger, fleet,
                                                                         findings):
    store = ledger.store  # the fleet's moves end at T0 + 5h, by ops@
    people.sync(store, [*ROSTER, {"email": "ops@example.com", "status": "active"}],
                at=T0 - 30 * DAY)
    set_roles(store, "chat/v1", owners=[ALICE], reviewers=[BOB, CAROL], at=T0 + 6 * HOUR)
    # written straight into the ledger (an older client, a mirror of another registry)
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", fleet["v4"], actor="erin@example.com",
                          at=T0 + 7 * HOUR)
    # an emergency, recorded as such
    protection.move_alias(store, "chat/v1", fleet["v3"], actor=BOB, reason="incident 42",
                          at=T0 + 8 * HOUR, break_glass=True, admin=True)
    # an unprotected alias moved by someone who had left, and by nobody named
    with store.write() as conn:
        aliases.set_alias(conn, "embed/search", fleet["v4"], actor=DANA, at=T0 + 9 * HOUR)
        aliases.set_alias(conn, "chat/hosted", fleet["v3"], at=T0 + 10 * HOUR)
    found = sorted(findings("MW206"), key=lambda f: f.evidence["at"])
    assert [(f.subject, f.evidence["kind"], f.evidence["problems"]) for f in found] == [
        ("chat/v1", "rollback", ["not-promoted", "actor-not-in-roster"]),
        ("chat/v1", "break-glass", ["break-glass"]),
        ("embed/search", "move", ["actor-left"]),
        ("chat/hosted", "move", ["no-actor"])]
    assert found[1].message == (
        f"chat/v1 -> model chat@v3 ({fleet['v3'][:19]}…) at 2026-03-01T20:00:00Z by "
        f"bob@example.com (alias event {found[1].evidence['alias_event']}): break-glass move "
        "around its reviewers of record bob@example.com, carol@example.com: incident 42")
    assert found[0].message.endswith("rollback of a protected alias without a promotion (around "
                                     "its reviewers of record bob@example.com, "
                                     "carol@example.com); erin@example.com is not in the roster")
    assert found[0].severity == "warning" and found[1].evidence["reviewers"] == [BOB, CAROL]
    # the roster part can be turned off; --since leaves older moves out
    assert [f.evidence["problems"] for f in findings("MW206", roster=False)] == [
        ["not-promoted"], ["break-glass"]]
    assert sorted(f.subject for f in findings("MW206", since=T0 + 9 * HOUR)) == [
        "chat/hosted", "embed/search"]


def test_MW206_clean_for_promotions_moves_before_protection_and_creation(ledger, fleet,
                                                                         findings):
    """The clean control: a roster everyone who moved anything is on, hand moves made
    before the alias had reviewers, creating a protected alias, and a promotion."""
    store = ledger.store
    people.sync(store, [*ROSTER, {"email": "ops@example.com", "status": "active"}],
                at=T0 - 30 * DAY)
    move(store, "chat/v1", fleet["v4"], T0 + 6 * HOUR)  # not yet protected
    set_roles(store, "chat/v1", owners=[ALICE], reviewers=[BOB, CAROL], at=T0 + 7 * HOUR)
    set_roles(store, "chat/canary", owners=[ALICE], reviewers=[BOB], at=T0 + 7 * HOUR)
    protection.move_alias(store, "chat/canary", fleet["v3"], actor=ALICE, at=T0 + 8 * HOUR)
    qa = put(store, "evalset", QA, "qa", "1")
    run = eval_run(store, evalset=qa, model=fleet["v3"], finished_at=T0 + 8 * HOUR)
    req = promotion.request(store, "chat/v1", fleet["v3"], ALICE, at=T0 + 9 * HOUR)
    opens(store, run, BOB, T0 + 10 * HOUR)
    res = promotion.approve(store, req.id, BOB, at=T0 + 10 * HOUR + 30 * MIN)
    assert res.outcome == "approved", res.evaluation.failures
    assert findings("MW206") == []
    assert findings("MW206", now=NOW + DAY) == []
