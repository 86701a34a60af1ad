"""The findings page and GET /api/v1/findings/latest under hostile query parameters and
hostile ledger text: a bad filter is a 422 naming it (an error page on the dashboard),
never a 5xx; a search or a finding's text is escaped wherever it is shown, and ids in
links are encoded."""

from __future__ import annotations

import json

import pytest

from modelward.ledger import findings as ledger_findings
from modelward.timefmt import now_us
from modelward.web.auth import COOKIE

from ..web import apiclient
from ..web.apiclient import error

api = apiclient.api  # the fixture
LATEST = "/api/v1/findings/latest"
EVIL = '"><img src=x onerror=alert(1)>'
BIDI = "chat/\u202ev1"


def _hostile_run(store) -> str:
    """A recorded run whose one finding names an alias and ids full of markup."""
    now = now_us()
    evidence = {"alias": EVIL, "prompt_aliases": [BIDI], "first_decision": "not-a-uuid",
                "request": "../../tokens", "decisions": 3}
    with store.write() as conn:
        run = ledger_findings.start_run(conn, source="check", started_at=now, now=now,
                                        since=None, guards=["MW105"])
        ledger_findings.finish_run(conn, run, [{
            "key": "0123456789abcdef", "code": "MW105", "severity": "warning",
            "subject": EVIL, "message": f"{EVIL} and {BIDI} still named an old digest",
            "fix": "<b>restart</b>", "evidence": json.dumps(evidence), "decisions": 3,
            "aliases": 2, "first_seen": now, "last_seen": now}], finished_at=now,
            guards=["MW105"], counts={"warning": 1}, seconds=0.1, keep=10)
    return run


@pytest.fixture
def browser_client(api):
    api.client.cookies.set(COOKIE, api.secrets["reader"])
    yield api.client
    api.client.cookies.clear()


@pytest.mark.parametrize("params, field", [
    ({"severity": "<script>"}, "severity"), ({"severity": "error\x00"}, "severity"),
    ({"guard": "MW1' OR 1=1 --"}, "guard"), ({"guard": "MW\u0661\u0660\u0661"}, "guard"),
    ({"since": "999999999999d"}, "since"), ({"since": "+275760-09-13T00:00:00Z"}, "since"),
    ({"alias": "a" * 5000}, "alias"), ({"q": "%" * 10_000}, "q"), ({"q": "a\x00b"}, "q"),
    ({"new": "1; DROP TABLE findings"}, "new"),
])
def test_a_hostile_filter_is_a_422_naming_it_on_the_api_and_the_page(api, browser_client,
                                                                     params, field):
    _hostile_run(api.store)
    assert error(api.get(LATEST, params=params), 422)["field"] == field
    page = browser_client.get("/", params=params)
    assert page.status_code == 422 and "Traceback" not in page.text
    assert "<script>" not in page.text


def test_search_and_ledger_text_are_escaped_and_ids_encoded(api, browser_client):
    _hostile_run(api.store)
    page = browser_client.get("/", params={"q": '"><script>alert(1)</script>'})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert 'id="no-match"' in page.text  # nothing matches that search
    page = browser_client.get("/").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "\u202e" not in page and "\\u202e" in page  # bidi override shown, not obeyed
    assert "<b>restart</b>" not in page
    # the alias link's href is percent-encoded, its text escaped
    assert 'href="/aliases?alias=%22%3E%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E"' in page
    assert 'href="/promotions/..%2F..%2Ftokens"' in page  # never a path outside /promotions
    assert 'href="/decisions/not-a-uuid"' not in page  # not an id: no link
    body = api.get(LATEST, params={"alias": EVIL}).json()
    assert body["shown"] == 1 and body["findings"][0]["subject"] == EVIL  # JSON keeps the text


def test_a_far_future_since_is_valid_and_matches_nothing(api, browser_client):
    _hostile_run(api.store)
    body = api.get(LATEST, params={"since": "9999-12-31T23:59:59Z"}).json()
    assert (body["total"], body["shown"]) == (1, 0)
    assert browser_client.get("/", params={"since": "9999-12-31T23:59:59Z"}).status_code == 200
