"""The roster behind the promotion gates: CSV sync all or nothing, owners and reviewers of
record per alias, on every backend."""

from __future__ import annotations

import pytest

from modelward.errors import ValidationError
from modelward.ledger import people

from .promotion_world import ALICE, BOB, CAROL, DANA, DAY, T0, set_roles

GOOD = (b"\xef\xbb\xbfEmail,Name,Status,Team\n"  # a spreadsheet's BOM and capitalised header
        b"Alice@Example.com,Alice,active,ml\n"
        b'bob@example.com,"Bob, Jr.",ACTIVE,\n'
        b"\n"
        b"dana@example.com,Dana,left,ml\n")


def test_a_roster_csv_is_read_with_its_optional_columns():
    assert people.parse_csv(GOOD) == [
        {"email": ALICE, "status": "active", "name": "Alice", "team": "ml"},
        {"email": BOB, "status": "active", "name": "Bob, Jr.", "team": None},
        {"email": DANA, "status": "left", "name": "Dana", "team": "ml"}]
    assert people.parse_csv(b"status,email\nactive,carol@example.com\n") == [
        {"email": CAROL, "status": "active"}]  # absent columns: stored values are kept


def test_every_bad_line_is_named_and_nothing_is_returned():
    data = (b"email,name,status,team\n"
            b"alice@example.com,Alice,active,ml\n"
            b"not-an-email,X,active,ml\n"
            b'bob@example.com,"Bob, Jr.",gone,ml\n'
            b"ALICE@example.com,Alice again,left,ml\n")
    with pytest.raises(ValidationError) as exc:
        people.parse_csv(data, name="team.csv")
    assert exc.value.message == ("team.csv: line 3: email: not an e-mail address: "
                                 "'not-an-email' (and 2 more bad lines); nothing was written")
    assert [p.message for p in exc.value.problems] == [
        "line 3: email: not an e-mail address: 'not-an-email'",
        "line 4: status: status must be active or left, got 'gone'",
        "line 5: email: repeats alice@example.com of line 2"]


def test_lines_the_csv_cannot_split_safely_are_named_before_anything_else():
    data = (b"email,name,status,team\n"
            b"alice@example.com,Alice,active,ml\n"
            b'bob@example.com,"Bob\nthe second",active,ml\n'  # a quoted name spans two lines
            b"carol@example.com,Carol,active,ml,extra\n")
    with pytest.raises(ValidationError) as exc:
        people.parse_csv(data, name="team.csv")
    assert exc.value.message == ("team.csv, line 3: the quoted name cell runs on to line 4: "
                                 "a stray quote? (and 1 more bad lines)")
    assert [p.message for p in exc.value.problems] == [
        "team.csv, line 3: the quoted name cell runs on to line 4: a stray quote?",
        "team.csv, line 5: 5 cells where the header has 4"]


@pytest.mark.parametrize("data, message", [
    (b"", "team.csv is empty; expected the header email,name,status,team"),
    (b"email,name,role\nalice@example.com,A,x\n", "team.csv: unknown column(s) role"),
    (b"email,name\nalice@example.com,A\n", "team.csv: missing column(s) status"),
    (b"email,status,email\n", "team.csv, line 1: header repeats email"),
    (b"email,status\n\n", "team.csv lists nobody"),
    (b"email,status\n\xff\n", "team.csv, line 2: not UTF-8 text (invalid start byte at byte 13)"),
])
def test_a_file_that_is_not_a_roster_is_refused(data, message):
    with pytest.raises(ValidationError) as exc:
        people.parse_csv(data, name="team.csv")
    assert exc.value.detail == message


def test_sync_adds_updates_and_leaves_absent_people_alone_unless_pruned(ledger):
    store = ledger.store
    first = people.sync(store, people.parse_csv(GOOD), at=T0)
    assert (first.added, first.updated, first.unchanged, first.pruned) == (
        [ALICE, BOB, DANA], [], [], [])
    rows = [{"email": ALICE, "name": "Alice", "status": "left", "team": "platform"},
            {"email": BOB, "name": "Bob, Jr.", "status": "active", "team": None},
            {"email": CAROL, "name": None, "status": "active", "team": None}]
    second = people.sync(store, rows, at=T0 + DAY)  # dana is not in this file
    assert second.to_dict() == {
        "added": [CAROL], "unchanged": 1, "pruned": [],
        "updated": [{"email": ALICE, "changes": ["status active -> left",
                                                 "team ml -> platform"]}]}
    with store.read() as conn:
        team = people.roster(conn)
        assert [p.email for p in people.list_people(conn, "active")] == [BOB, CAROL]
        assert [p.email for p in people.list_people(conn)] == [ALICE, BOB, CAROL, DANA]
    assert (team[ALICE].status, team[ALICE].updated_at) == ("left", T0 + DAY)
    assert team[BOB].updated_at == T0  # unchanged rows keep their time
    assert team[DANA].status == "left"  # left alone
    people.sync(store, [{"email": DANA, "name": "Dana", "status": "active", "team": "ml"}],
                at=T0 + 2 * DAY)
    pruned = people.sync(store, rows[1:], prune=True, at=T0 + 3 * DAY)
    assert pruned.pruned == [DANA]  # alice had already left
    # a file without name and team columns changes neither
    kept = people.sync(store, people.parse_csv(b"email,status\nalice@example.com,active\n"),
                       at=T0 + 4 * DAY)
    assert kept.updated == [(ALICE, ["status left -> active"])]
    with store.read() as conn:
        assert people.get(conn, ALICE).team == "platform"
    with pytest.raises(ValidationError, match="email: a person is listed twice"):
        people.sync(store, [{"email": BOB, "status": "active"}, {"email": "BOB@example.com",
                                                                  "status": "left"}])
    with store.read() as conn:
        assert {p.email: p.status for p in people.list_people(conn)} == {
            ALICE: "active", BOB: "active", CAROL: "active", DANA: "left"}  # nobody deleted
        with pytest.raises(ValidationError, match="unknown status 'gone'"):
            people.list_people(conn, "gone")


def test_roles_are_replaced_per_role_and_keep_when_each_person_was_assigned(ledger):
    store = ledger.store
    held = set_roles(store, "chat/v1", owners=[ALICE], reviewers=[BOB, "Carol@example.com", BOB],
                     at=T0)
    assert (held.owners, held.reviewers) == ({ALICE: T0}, {BOB: T0, CAROL: T0})
    held = set_roles(store, "chat/v1", reviewers=[CAROL, DANA], at=T0 + DAY)
    assert (held.owners, held.reviewers) == ({ALICE: T0}, {CAROL: T0, DANA: T0 + DAY})
    set_roles(store, "prompt/support", reviewers=[BOB], at=T0)
    with store.read() as conn:
        assert sorted(people.all_roles(conn)) == ["chat/v1", "prompt/support"]
        assert not people.roles(conn, "chat/v2")
        assert people.roles(conn, "chat/v1").to_dict(people.roster(conn))["reviewers"] == [
            {"email": CAROL, "assigned_at": "2026-03-01T12:00:00Z", "standing": "unknown"},
            {"email": DANA, "assigned_at": "2026-03-02T12:00:00Z", "standing": "unknown"}]


def test_with_a_roster_only_active_people_can_be_given_a_role(ledger):
    store = ledger.store
    people.sync(store, people.parse_csv(GOOD), at=T0)
    for who, message in ((DANA, f"reviewer: {DANA} left the team"),
                         (CAROL, f"reviewer: {CAROL} is not in the roster"),
                         ("carol", "reviewer: not an e-mail address: 'carol'")):
        with pytest.raises(ValidationError) as exc:
            set_roles(store, "chat/v1", reviewers=[BOB, who])
        assert exc.value.message == message
    with pytest.raises(ValidationError, match="not a valid alias name"):
        set_roles(store, "chat v1", owners=[ALICE])
    with store.read() as conn:
        assert not people.roles(conn, "chat/v1")  # nothing half-set
    assert set(set_roles(store, "chat/v1", owners=[ALICE], reviewers=[BOB]).reviewers) == {BOB}
