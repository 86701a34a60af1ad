"""POST/DELETE /api/v1/findings/{key}/ack under hostile input: an unknown or malformed key,
a missing, overlong or control-laden reason, a bad expiry, a replayed ack, a body naming
somebody else, a reader's token — each a 4xx in the one error shape naming what was wrong,
and nothing written; the ack that is made names the token's person and is listed with the
lifecycle."""

from __future__ import annotations

import json

import pytest

from modelward.ledger import acks as ledger_acks
from modelward.ledger import chain
from modelward.ledger import findings as ledger_findings
from modelward.timefmt import now_us

from ..web import apiclient
from ..web.apiclient import error, old_token_without_email

api = apiclient.api  # the fixture
KEY = "0123456789abcdef"
ACK = f"/api/v1/findings/{KEY}/ack"


def _open_finding(store) -> None:
    now = now_us()
    with store.write() as conn:
        run = ledger_findings.start_run(conn, source="check", started_at=now, now=now,
                                        since=None, guards=["MW105"])
        ledger_findings.finish_run(conn, run, [{
            "key": KEY, "code": "MW105", "severity": "warning", "subject": "chat/v1",
            "message": "still serving the old digest", "fix": "restart",
            "evidence": json.dumps({}), "decisions": 3, "aliases": 1, "first_seen": now,
            "last_seen": now}], finished_at=now, guards=["MW105"],
            counts={"warning": 1}, seconds=0.1, keep=10)


def _acks(store) -> list:
    with store.read() as conn:
        return ledger_acks.of_finding(conn, KEY)


def test_an_ack_names_the_token_holder_and_shows_in_every_listing(api):
    _open_finding(api.store)
    resp = api.post(ACK, role="writer-email", json={"reason": "known vendor swap",
                                                    "until": "7d"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["key"], body["actor"], body["reason"]) == (KEY, "bob@example.com",
                                                           "known vendor swap")
    assert body["until"] and body["revoked_at"] is None
    assert api.get("/api/v1/findings", params={"state": "open"}).json()["count"] == 0
    [row] = api.get("/api/v1/findings", params={"state": "acknowledged"}).json()["findings"]
    assert row["state"] == "acknowledged" and row["acknowledged_by"] == "bob@example.com"
    assert row["ack_reason"] == "known vendor swap" and row["ack_until"] == body["until"]
    [row] = api.get("/api/v1/findings", params={"state": "all"}).json()["findings"]
    assert row["acknowledged_by"] == "bob@example.com" and row["opened_at"]
    # replayed: refused while the first lasts, nothing more written
    assert "already acknowledged" in error(api.post(ACK, role="writer-email", json={
        "reason": "known vendor swap", "until": "7d"}), 409)["message"]
    gone = api.delete(ACK, role="approver-email")
    assert gone.status_code == 200 and gone.json()["revoked_by"] == "ann@example.com"
    assert error(api.delete(ACK, role="approver-email"), 404)
    [row] = api.get("/api/v1/findings", params={"state": "open"}).json()["findings"]
    assert row["state"] == "open" and row["acknowledged_by"] is None
    assert len(_acks(api.store)) == 1
    with api.store.read() as conn:
        assert chain.verify(conn).ok


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("/api/v1/findings/ffffffffffffffff/ack", {"reason": "x"}, 404, None),
    ("/api/v1/findings/..%2F..%2Ftokens/ack", {"reason": "x"}, 404, None),
    ("/api/v1/findings/" + "a" * 5000 + "/ack", {"reason": "x"}, 422, "key"),
    ("/api/v1/findings/DROP%20TABLE/ack", {"reason": "x"}, 422, "key"),
    (ACK, {}, 422, None),
    (ACK, {"reason": ""}, 422, "reason"),
    (ACK, {"reason": "x" * 100_000}, 422, "reason"),
    (ACK, {"reason": "a\x00b"}, 422, None),
    (ACK, {"reason": "\x1b[2J"}, 422, "reason"),
    (ACK, {"reason": "x", "until": "tomorrow"}, 422, "until"),
    (ACK, {"reason": "x", "until": "1999-01-01T00:00:00Z"}, 422, "until"),
    (ACK, {"reason": "x", "until": "99999999d"}, 422, "until"),
    (ACK, {"reason": "x", "until": "+275760-09-13T00:00:00Z"}, 422, "until"),
    (ACK, {"reason": "x", "extra": 1}, 422, None),
    (ACK, {"reason": ["x"]}, 422, None),
])
def test_a_bad_ack_is_refused_and_nothing_is_written(api, path, body, status, field):
    _open_finding(api.store)
    got = error(api.post(path, role="writer-email", json=body), status)
    if field:
        assert got.get("field") == field, got
    assert _acks(api.store) == []


@pytest.mark.parametrize(("role", "body", "status"), [
    ("writer-email", {"reason": "x", "actor": "ann@example.com"}, 403),  # someone else
    ("reader", {"reason": "x"}, 403),
])
def test_acting_for_somebody_else_or_reading_only_is_forbidden(api, role, body, status):
    _open_finding(api.store)
    assert error(api.post(ACK, role=role, json=body), status)["code"] == "forbidden"
    assert error(api.delete(ACK, role="reader"), 403)
    assert _acks(api.store) == []


def test_a_token_without_an_email_cannot_acknowledge(api):
    _open_finding(api.store)
    secret = old_token_without_email(api.store, "writer")
    resp = api.client.post(ACK, json={"reason": "x"},
                           headers={"Authorization": f"Bearer {secret}"})
    assert error(resp, 403)["code"] == "forbidden"
    assert _acks(api.store) == []


def test_the_event_streams_are_bounded(api, monkeypatch):
    from modelward.web.api import finding_events

    monkeypatch.setattr(finding_events, "MAX_STREAMS", 0)
    got = error(api.get("/api/v1/findings/events"), 429)
    assert got["code"] == "too_many_streams"
    assert finding_events.open_streams(api.client.app) == 0


@pytest.mark.parametrize("value", [None, "", "abc", "1-", "-1", "1-2-3", "9" * 40 + "-1",
                                   "12-" + "9" * 40, "１２-3", "12 -3\n"])
def test_a_foreign_last_event_id_starts_from_now(value):
    from modelward.guards.events import Cursor

    assert Cursor.parse(value) is None
    assert Cursor.parse("1765000000000000-2") == Cursor(1765000000000000, 2)
