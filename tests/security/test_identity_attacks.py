"""Attacks on identity through the API: acting as someone else, acting with no identity,
and moving a protected alias around its promotion. Each attack is refused (403) and
leaves nothing recorded."""

from __future__ import annotations

import pytest

from modelward.ledger import aliases, people

from ..web import apiclient
from ..web.apiclient import error, old_token_without_email, seed_model

api = apiclient.api  # the fixture


@pytest.fixture
def protected(api):
    """chat/v1 at model one, with a reviewer of record; model two registered."""
    one = seed_model(api.store, "chat/v1", b"w1")
    two = seed_model(api.store, "other/v1", b"w2")
    with api.store.write() as conn:
        people.set_roles(conn, "chat/v1", owners=["ann@example.com"],
                         reviewers=["bob@example.com"])
    return one, two


def _history(api, alias="chat/v1"):
    with api.store.read() as conn:
        return [(e.kind, e.actor) for e in aliases.history(conn, alias)]


def test_a_writer_cannot_move_an_alias_as_somebody_else(api):
    seed_model(api.store, "other/v1", b"w2")
    two = seed_model(api.store, "other/v2", b"w3")
    err = error(api.put("/api/v1/aliases/chat/v9", role="writer-email",
                        json={"digest": two, "actor": "ciso@example.com"}), 403)
    assert err == {"code": "forbidden", "message": "this token acts for bob@example.com; it "
                   "cannot act as 'ciso@example.com' (actor)"}
    with api.store.read() as conn:
        assert aliases.list_aliases(conn)[0].alias != "chat/v9"
    # naming yourself is fine (any case)
    moved = api.put("/api/v1/aliases/chat/v9", role="writer-email",
                    json={"digest": two, "actor": "Bob@Example.com"}).json()
    assert moved["event"]["actor"] == "bob@example.com"


def test_a_token_without_an_e_mail_can_neither_write_nor_approve_nor_open(api, protected):
    _one, two = protected
    for role in ("writer", "admin", "approver"):
        api.secrets[f"old-{role}"] = old_token_without_email(api.store, role)
    attempts = [
        api.put("/api/v1/aliases/chat/v2", role="old-writer",
                json={"digest": two, "actor": "ann@example.com"}),
        api.post("/api/v1/promotions", role="old-writer",
                 json={"alias": "chat/v1", "digest": two, "requester": "ann@example.com"}),
        api.post("/api/v1/promotions/0196c1d2-0000-7000-8000-000000000000/approve",
                 role="old-approver", json={"approver": "bob@example.com"}),
        api.put("/api/v1/aliases/chat/v1", role="old-admin",
                json={"digest": two, "break_glass": True, "reason": "x"}),
    ]
    for resp in attempts:
        assert "carries no e-mail" in error(resp, 403)["message"]
    assert _history(api) == [("create", None)]
    # and nobody can make such a token any more
    err = error(api.post("/api/v1/tokens", role="admin", json={"role": "writer"}), 422)
    assert err["field"] == "email"


def test_a_protected_alias_is_refused_a_plain_move_and_break_glass_is_for_admins(api,
                                                                                 protected):
    one, two = protected
    err = error(api.put("/api/v1/aliases/chat/v1", json={"digest": two}), 403)
    assert err["message"] == ("chat/v1 is protected (reviewers of record: bob@example.com): "
                              "it moves only through an approved promotion")
    assert err["hint"].startswith(f'POST /api/v1/promotions {{"alias": "chat/v1", "digest": '
                                  f'"{two}"}} (`modelward promote request chat/v1 {two}`)')
    err = error(api.put("/api/v1/aliases/chat/v1",
                        json={"digest": two, "break_glass": True, "reason": "hotfix"}), 403)
    assert err["message"] == "only an admin may break the glass on chat/v1"
    err = error(api.put("/api/v1/aliases/chat/v1", role="admin",
                        json={"digest": two, "break_glass": True}), 422)
    assert err["field"] == "reason"
    assert _history(api) == [("create", None)]
    moved = api.put("/api/v1/aliases/chat/v1", role="admin",
                    json={"digest": two, "break_glass": True, "reason": "hotfix"}).json()
    ev = moved["event"]
    assert (ev["kind"], ev["actor"], ev["reason"], ev["evidence"]["reviewers"]) == (
        "break-glass", "admin@example.com", "hotfix", ["bob@example.com"])
    assert ev["token_id"]
    found = api.get("/api/v1/findings", params={"select": "MW206"}).json()["findings"]
    assert [(f["subject"], f["evidence"]["problems"]) for f in found] == [
        ("chat/v1", ["break-glass"])]
