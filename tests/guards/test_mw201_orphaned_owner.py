"""MW201 orphaned-owner: live aliases and artifacts owned by people not active in the
roster, and aliases with no active reviewer."""

from __future__ import annotations

from modelward.ledger import people
from modelward.ledger.schema import alias_roles
from tests.registry.promotion_world import ALICE, BOB, CAROL, DANA, ROSTER, set_roles

from .builders import DAY, NOW, T0, move, put

# every alias of the healthy fleet (builders.healthy), with active owners and reviewers
FLEET_ALIASES = ("chat/v1", "prompt/support@production", "embed/search", "chat/hosted")


def short(digest: str) -> str:
    return digest[:19] + "…"


def staffed(store) -> None:
    """The fleet's roster: the team, plus the registered owner of chat@v3."""
    people.sync(store, [*ROSTER, {"email": "ml@example.com", "status": "active"}],
                at=T0 - 30 * DAY)
    for alias in FLEET_ALIASES:
        set_roles(store, alias, owners=[ALICE], reviewers=[BOB, CAROL])


def test_MW201_fires_for_owners_who_left_and_aliases_nobody_can_review(ledger, fleet, findings):
    store = ledger.store
    staffed(store)
    set_roles(store, "chat/v1", owners=[ALICE, BOB], reviewers=[CAROL])
    # the next roster sync: alice and carol left, ml@ is not in it any more
    people.sync(store, [{"email": ALICE, "status": "left"}, {"email": CAROL, "status": "left"},
                        {"email": BOB, "status": "active"}], prune=True, at=T0)
    found = findings("MW201")
    assert sorted((f.subject, f.evidence["problem"], f.evidence["email"] or "")
                  for f in found) == [
        ("chat/hosted", "owner-inactive", ALICE),
        ("chat/v1", "no-reviewer", ""),
        ("chat/v1", "owner-inactive", ALICE),
        ("embed/search", "owner-inactive", ALICE),
        ("prompt/support@production", "owner-inactive", ALICE),
        (fleet["v3"], "artifact-owner-inactive", "ml@example.com")]
    by = {(f.subject, f.evidence["problem"]): f for f in found}
    assert by["chat/v1", "owner-inactive"].message == (
        "chat/v1 is owned by alice@example.com, who has left the team")
    assert by["chat/v1", "no-reviewer"].message == (
        "chat/v1 has no active reviewer of record (carol@example.com has left the team); no "
        "promotion of it can pass the gates")
    art = by[fleet["v3"], "artifact-owner-inactive"]
    assert art.message == (f"model chat@v3 ({short(fleet['v3'])}), serving chat/v1, is owned "
                           "by ml@example.com, who has left the team")
    assert art.evidence["aliases"] == ["chat/v1"] and art.severity == "warning"
    # someone unknown to the roster, and an alias with owners but no reviewers at all
    set_roles(store, "embed/search", owners=[BOB], reviewers=[BOB])
    with store.write() as conn:  # written before the roster knew better
        conn.execute(alias_roles.insert().values(alias="chat/hosted", email="erin@example.com",
                                                 role="owner", assigned_at=T0))
        conn.execute(alias_roles.delete().where(alias_roles.c.alias == "chat/hosted",
                                                alias_roles.c.role == "reviewer"))
    hosted = [f for f in findings("MW201") if f.subject == "chat/hosted"]
    assert sorted(f.message for f in hosted) == [
        "chat/hosted has no active reviewer of record; no promotion of it can pass the gates",
        "chat/hosted is owned by alice@example.com, who has left the team",
        "chat/hosted is owned by erin@example.com, who is not in the roster"]
    assert not [f for f in findings("MW201", require_reviewer=False)
                if f.evidence["problem"] == "no-reviewer"]


def test_MW201_judges_only_live_aliases_and_artifacts(ledger, fleet, findings):
    store = ledger.store
    staffed(store)
    gone = put(store, "model", b"weights-v5", "chat", "v5", owner=DANA)
    move(store, "chat/next", gone, NOW + DAY)  # not live yet at NOW
    with store.write() as conn:  # set before dana left
        conn.execute(alias_roles.insert().values(alias="chat/next", email=DANA, role="owner",
                                                 assigned_at=T0))
    assert findings("MW201") == []
    move(store, "chat/canary", gone, T0 + DAY)
    found = findings("MW201")
    assert [(f.subject, f.evidence["problem"]) for f in found] == [
        ("chat/canary", "no-reviewer"), (gone, "artifact-owner-inactive")]
    assert found[1].message == (f"model chat@v5 ({short(gone)}), serving chat/canary, is "
                                "owned by dana@example.com, who has left the team")
    later = findings("MW201", now=NOW + 2 * DAY)
    assert sorted((f.subject, f.evidence["problem"]) for f in later) == [
        ("chat/canary", "no-reviewer"), ("chat/next", "no-reviewer"),
        ("chat/next", "owner-inactive"), (gone, "artifact-owner-inactive")]
    assert later[-1].evidence["aliases"] == ["chat/canary", "chat/next"]


def test_MW201_clean_on_a_staffed_fleet_and_on_a_ledger_without_a_roster(ledger, fleet,
                                                                          findings):
    store = ledger.store
    # no roster, no roles: the guard stays quiet (chat@v3 names an owner nobody can judge)
    assert findings("MW201") == []
    # roles but no roster: reviewers count as active
    set_roles(store, "chat/v1", owners=[DANA], reviewers=[BOB])
    assert findings("MW201") == []
    staffed(store)
    assert findings("MW201") == []
