"""Every route of the app (API, OTLP, dashboard: whatever create_app serves) against no
token, a revoked token, each role it must refuse (403) and every role it admits.

Routes guarded by :func:`modelward.web.auth.require` declare their roles; a dashboard page
(cookie log-in, no declared roles) is checked by behaviour: without a live cookie it is
refused or sent to /login, with any role's cookie it answers. A route that does neither
fails the test unless it is listed in PUBLIC on purpose."""

from __future__ import annotations

import re

import pytest

from modelward.ids import uuid7
from modelward.ledger import tokens as ledger_tokens
from modelward.web.auth import ADMIN, APPROVE, COOKIE, READ, WRITE

from . import apiclient
from .apiclient import PUBLIC, ROLES, api_routes, digest

api = apiclient.api  # the fixture

# Routes that need no token beyond apiclient.PUBLIC; each must be added here on purpose.
PUBLIC_PAGES = {"/login", "/login/code", "/logout", "/static/{name}"}  # logging in needs no log-in
# event streams never end: only their refusals are checked here (tests/web/test_finding_events.py
# reads them from a real server)
STREAMS = {"/api/v1/findings/events", "/findings/events"}
# The role set each API route must demand (a route not listed fails the test).
EXPECTED = {
    ("GET", "/api/v1/aliases"): READ,
    ("GET", "/api/v1/aliases/{alias:path}"): READ,
    ("GET", "/api/v1/aliases/{alias:path}/history"): READ,
    ("GET", "/api/v1/aliases/{alias:path}/owners"): READ,
    ("PUT", "/api/v1/aliases/{alias:path}"): WRITE,
    ("PUT", "/api/v1/aliases/{alias:path}/owners"): ADMIN,
    ("GET", "/api/v1/artifacts"): READ,
    ("GET", "/api/v1/artifacts/{digest}"): READ,
    ("POST", "/api/v1/artifacts"): WRITE,
    ("GET", "/api/v1/audit/{decision_id}"): READ,
    ("GET", "/api/v1/verify"): READ,
    ("GET", "/api/v1/chain/head"): READ,
    ("GET", "/api/v1/decisions"): READ,
    ("GET", "/api/v1/decisions/export"): READ,
    ("GET", "/api/v1/decisions/{decision_id}"): READ,
    ("POST", "/api/v1/decisions"): WRITE,
    ("GET", "/api/v1/evals"): READ,
    ("GET", "/api/v1/evals/{run_id}"): READ,
    ("POST", "/api/v1/evals/{run_id}/open"): READ,
    ("GET", "/api/v1/openapi.json"): READ,
    ("GET", "/api/v1/experiments"): READ,
    ("GET", "/api/v1/experiments/{name:path}"): READ,
    ("GET", "/api/v1/experiments/{name:path}/check"): READ,
    ("GET", "/api/v1/experiments/{name:path}/regimes"): READ,
    ("POST", "/api/v1/experiments/{name:path}/exposures"): WRITE,
    ("POST", "/api/v1/feedback"): WRITE,
    ("GET", "/api/v1/findings"): READ,
    ("GET", "/api/v1/findings/latest"): READ,
    ("GET", "/api/v1/findings/events"): READ,
    ("POST", "/api/v1/findings/{key}/ack"): ("admin", "approver", "writer"),
    ("DELETE", "/api/v1/findings/{key}/ack"): ("admin", "approver", "writer"),
    ("GET", "/api/v1/fingerprints"): READ,
    ("GET", "/api/v1/fingerprints/compare"): READ,
    ("GET", "/api/v1/people"): READ,
    ("GET", "/api/v1/promotions"): READ,
    ("GET", "/api/v1/promotions/{request_id}"): READ,
    ("POST", "/api/v1/promotions"): WRITE,
    ("POST", "/api/v1/promotions/{request_id}/approve"): APPROVE,
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ADMIN,
    ("DELETE", "/api/v1/tokens/{token_id}"): ADMIN,
}
SAMPLE = {"alias": "chat/v1", "digest": digest("x"), "decision_id": uuid7()}


def concrete(path: str) -> str:
    """The path with every parameter filled with a plausible value."""
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE.get(m.group(1), "x"), path)


def call(api, method: str, path: str, headers: dict):
    kw = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return api.client.request(method, concrete(path), headers=headers, follow_redirects=False,
                              **kw)


def cookie(secret: str) -> dict:
    """A logged-in browser's request from one of the server's own pages."""
    return {"Cookie": f"{COOKIE}={secret}", "Origin": "http://testserver"}


def refused_without_token(resp, path: str) -> bool:
    if resp.status_code == 401:
        return resp.json()["error"]["code"] == "unauthorized"
    # a dashboard page may send the browser to its log-in page instead
    return (not path.startswith("/api/") and resp.status_code in (302, 303, 307)
            and "login" in resp.headers.get("location", ""))


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_every_route_refuses_no_token_a_revoked_token_and_wrong_roles(api):
    routes = api_routes(api.client.app)
    assert len(routes) >= len(EXPECTED)
    with api.store.write() as conn:
        tok, revoked = ledger_tokens.create(conn, role="admin", name="gone",
                                            email="gone@example.com")
        ledger_tokens.revoke(conn, tok.id)
    unguarded, checked = [], 0
    for method, path, roles in routes:
        where = f"{method} {path}"
        if path in PUBLIC or path in PUBLIC_PAGES:
            continue
        if roles is None:  # a dashboard page: its cookie check, by behaviour
            if path.startswith("/api/") or method == "MOUNT":
                unguarded.append(where)
                continue
            for creds in ({"Origin": "http://testserver"}, cookie(revoked)):
                if not refused_without_token(call(api, method, path, creds), path):
                    unguarded.append(where)
            for role in ROLES if path not in STREAMS else ():
                resp = call(api, method, path, cookie(api.secrets[role]))
                assert resp.status_code not in (401, 403), f"{where} as {role}: {resp.text}"
                assert "/login" not in resp.headers.get("location", ""), f"{where} as {role}"
            checked += 1
            continue
        if (method, path) in EXPECTED:
            assert set(roles) == set(EXPECTED[(method, path)]), where
        else:
            assert not path.startswith("/api/"), f"{where}: add its role set to EXPECTED"
        assert refused_without_token(call(api, method, path, {}), path), where
        resp = call(api, method, path, {"Authorization": f"Bearer {revoked}"})
        assert resp.status_code == 401, where
        for role in ROLES:
            if path in STREAMS and role in roles:
                continue
            resp = call(api, method, path, api.headers(role))
            if role in roles:
                assert resp.status_code not in (401, 403), f"{where} as {role}: {resp.text}"
            else:
                assert resp.status_code == 403, f"{where} as {role}: {resp.text}"
                assert resp.json()["error"]["code"] == "forbidden"
        checked += 1
    assert unguarded == [], "routes without a token check (add to PUBLIC only on purpose)"
    assert checked >= len(EXPECTED)  # API routes, plus the pages and OTLP when present
    missing = set(EXPECTED) - {(m, p) for m, p, _r in routes}
    assert missing == set(), "EXPECTED names routes the app no longer has"


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_the_public_routes_answer_without_a_token(api):
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/api/v1/openapi.json").status_code == 401
    assert api.get("/api/v1/openapi.json").json()["info"]["title"] == "modelward"
    for gone in ("/api/v1/docs", "/docs", "/redoc", "/openapi.json"):  # no CDN-fed page
        assert api.get(gone).status_code == 404, gone


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_the_dashboard_cookie_opens_no_api_route(api):
    """The API takes Bearer tokens only: a logged-in browser led to an API URL (a link, a
    form on another site) acts as nobody."""
    for method, path in (("GET", "/api/v1/aliases"), ("POST", "/api/v1/decisions"),
                         ("GET", f"/api/v1/evals/{uuid7()}"), ("POST", "/v1/traces")):
        resp = api.client.request(method, path, headers=cookie(api.secrets["admin"]),
                                  content=b"[]")
        assert resp.status_code == 401, (method, path, resp.text)
        assert resp.json()["error"]["code"] == "unauthorized"
