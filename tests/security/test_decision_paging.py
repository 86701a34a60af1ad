"""Hostile input to the decisions list and its export, through the API and the dashboard: a
tampered or forged cursor, NUL bytes and bad digests in filters, an unknown export format
are each one 422 naming the field (an error page on the dashboard), never a 5xx; an export
of text written to look like a spreadsheet formula stays text."""

from __future__ import annotations

import base64
import csv
import io

import pytest

from modelward.ledger import decisions
from modelward.web.auth import COOKIE

from ..web import apiclient
from ..web.apiclient import error, seed_model

api = apiclient.api  # the fixture


def _record(store, *items: dict) -> list[str]:
    rows = [decisions.normalize(d)[0] for d in items]
    decisions.append(store, rows)
    return [r[0] for r in rows]


@pytest.fixture
def seeded(api):
    m = seed_model(api.store)
    ids = _record(api.store, *({"alias": "chat/v1", "model_digest": m, "process": "pod-a",
                                "subject": f"u{i}"} for i in range(5)),
                  {"alias": "chat/v1", "model_digest": m, "process": "@SUM(1+1)*cmd|' /C calc'!A0",
                   "subject": "=HYPERLINK(\"http://evil.example\",\"x\")"})
    return api, m, ids


def _forge(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


TAMPERED = ["not-a-cursor", "%00", _forge("v1:abc:0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70"),
            _forge("v1:1:'; DROP TABLE decisions; --"), _forge("v2:1:0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70"),
            _forge("v1:99999999999999999999999:0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70"),
            _forge("v1:1:0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70:extra"), "A" * 5000]


@pytest.mark.parametrize("cursor", TAMPERED)
def test_a_tampered_cursor_is_a_422_naming_it(seeded, cursor):
    api, _m, _ids = seeded
    err = error(api.get("/api/v1/decisions", params={"cursor": cursor}), 422)
    assert err["field"] == "cursor" and "not a cursor" in err["message"]


def test_the_dashboard_shows_the_same_refusal_as_an_error_page(seeded):
    api, _m, _ids = seeded
    api.client.cookies.set(COOKIE, api.secrets["reader"])
    resp = api.client.get("/decisions", params={"cursor": TAMPERED[2]})
    assert resp.status_code == 422 and "not a cursor this ledger made" in resp.text
    assert "Traceback" not in resp.text
    resp = api.client.get("/decisions/export", params={"format": "xlsx"})
    assert resp.status_code == 422 and "no export format" in resp.text
    resp = api.client.get("/decisions", params={"alias": "chat\x00v1"})
    assert resp.status_code == 422 and "NUL" in resp.text


@pytest.mark.parametrize(("params", "field"), [
    ({"alias": "chat/v1\x00"}, "alias"), ({"process": "p\x00"}, "process"),
    ({"subject": "x" * 301}, "subject"), ({"digest": "sha256:zz"}, "digest"),
    ({"digest": "' OR 1=1 --"}, "digest"), ({"since": "yesterday"}, "since"),
    ({"until": "99999-01-01T00:00:00Z"}, "until")])
def test_hostile_filters_are_422s_on_the_list_and_the_export(seeded, params, field):
    api, _m, _ids = seeded
    assert error(api.get("/api/v1/decisions", params=params), 422)["field"] == field
    assert error(api.get("/api/v1/decisions/export", params=params), 422)["field"] == field


def test_pages_through_the_api_with_the_next_cursor(seeded):
    api, _m, ids = seeded
    seen, cursor = [], None
    while True:
        resp = api.get("/api/v1/decisions", params={"limit": 4, **({"cursor": cursor}
                                                                   if cursor else {})})
        assert resp.status_code == 200
        seen += [d["id"] for d in resp.json()]
        cursor = resp.headers.get("x-next-cursor")
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert {d["alias_verdict"] for d in api.get("/api/v1/decisions").json()} == {"agrees"}


def test_an_exported_formula_stays_text(seeded):
    api, _m, _ids = seeded
    for get in (lambda p: api.get("/api/v1/decisions/export", params=p),
                lambda p: (api.client.cookies.set(COOKIE, api.secrets["reader"]),
                           api.client.get("/decisions/export", params=p))[1]):
        resp = get({"format": "csv", "process": "@SUM(1+1)*cmd|' /C calc'!A0"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/csv")
        assert "attachment" in resp.headers["content-disposition"]
        (row,) = list(csv.DictReader(io.StringIO(resp.text)))
        assert row["subject"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
        assert row["process"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@"))
    lines = api.get("/api/v1/decisions/export", params={"format": "jsonl"}).text.splitlines()
    assert len(lines) == 6


def test_the_export_needs_a_token_and_the_page_a_log_in(api):
    assert api.client.get("/api/v1/decisions/export").status_code == 401
    resp = api.client.get("/decisions/export", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")
