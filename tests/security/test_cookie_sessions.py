"""Attacks on the dashboard's cookie session, against a real ``modelward serve``: a page on
another origin (here another port of the same host) posting the dashboard's forms with
the visitor's cookie, the cookie used on the API, an evidence open recorded by a GET, and
login CSRF (a link that logs the visitor in as the attacker)."""

from __future__ import annotations

import re

import pytest

import modelward
from modelward.ledger import login_codes, promotions
from modelward.ledger import tokens as ledger_tokens
from modelward.web.auth import COOKIE

pytestmark = pytest.mark.timeout(120)
BOB = "bob@example.com"


def _ledger(target):
    return modelward.open(str(target.home))


def _code(target, role="approver", email=BOB) -> str:
    led = _ledger(target)
    with led.store.write() as conn:
        code, _ = login_codes.create(conn, role=role, email=email)
    led.close()
    return code


def _opens(target) -> list:
    led = _ledger(target)
    with led.store.read() as conn:
        found = promotions.opens(conn, target.world.run)
    led.close()
    return found


def _session(target, email=BOB) -> str:
    """Log in the honest way: open the link, press Continue on the server's own page."""
    resp = target.request("POST", "/login/code", f"code={_code(target, email=email)}&next=/",
                          {"Origin": target.origin,
                           "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 303, resp.body
    cookie = re.match(rf"{COOKIE}=([^;]+)", resp.headers["set-cookie"])
    return cookie.group(1)


def _form(cookie: str | None, origin: str | None, **extra) -> dict:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **extra}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    if origin:
        headers["Origin"] = origin
    return headers


def test_a_cross_origin_post_with_the_cookie_is_refused(target):
    cookie, evil = _session(target), f"http://127.0.0.1:{target.port + 1}"
    path = f"/promotions/{target.world.request}/evidence"
    with target.watch() as w:
        for headers in (_form(cookie, evil), _form(cookie, "null"), _form(cookie, None),
                        _form(cookie, None, Referer=f"{evil}/page")):
            resp = target.request("POST", path, b"", headers)
            assert resp.status == 403, (headers, resp.body)
            assert resp.json()["error"]["code"] == "cross_origin"
    w.assert_healthy()
    assert _opens(target) == []
    # from the dashboard's own page (Origin, or Referer without it) the open is recorded
    resp = target.request("POST", path, b"", _form(cookie, None,
                                                   Referer=f"{target.origin}/promotions"))
    assert resp.status == 303 and resp.headers["location"].startswith("/evals/")
    assert [(e, via) for e, _at, via in _opens(target)] == [(BOB, "dashboard")]


def test_the_cookie_opens_no_api_route(target):
    cookie = _session(target)
    with target.watch() as w:
        # a text/plain form post (no preflight) from another page
        resp = target.request("POST", "/api/v1/decisions", b'[{"subject": "x"}]',
                              {"Cookie": f"{COOKIE}={cookie}", "Content-Type": "text/plain",
                               "Origin": "http://evil.example"})
        assert resp.status == 401
        resp = target.request("GET", f"/api/v1/evals/{target.world.run}",
                              headers={"Cookie": f"{COOKIE}={cookie}"})
        assert resp.status == 401
    w.assert_healthy()


def test_reading_an_eval_run_records_no_open(target):
    before = _opens(target)
    led = _ledger(target)
    with led.store.write() as conn:
        _tok, secret = ledger_tokens.create(conn, role="reader", name="carol",
                                            email="carol@example.com")
    led.close()
    bearer = {"Authorization": f"Bearer {secret}"}
    resp = target.request("GET", f"/api/v1/evals/{target.world.run}", headers=bearer)
    assert resp.status == 200 and "opened_by" not in resp.json()
    assert _opens(target) == before
    resp = target.request("POST", f"/api/v1/evals/{target.world.run}/open", headers=bearer)
    assert resp.status == 200 and resp.json()["opened_by"] == "carol@example.com"
    assert [e for e, _at, _via in _opens(target)][len(before):] == ["carol@example.com"]


def test_a_log_in_link_logs_nobody_in_until_its_page_is_confirmed(target):
    """Login CSRF: the attacker's own code, in a link or a form on the attacker's page."""
    code = _code(target, role="reader", email="mallory@example.com")
    with target.watch() as w:
        resp = target.request("GET", f"/login?code={code}")
        assert resp.status == 200 and "set-cookie" not in resp.headers
        assert b"mallory@example.com" in resp.body  # the page says whose session it is
        evil = f"http://127.0.0.1:{target.port + 1}"
        for origin in (evil, None):
            resp = target.request("POST", "/login/code", f"code={code}",
                                  _form(None, origin))
            assert resp.status == 403 and "set-cookie" not in resp.headers
            resp = target.request("POST", "/login", "token=mw_x", _form(None, origin))
            assert resp.status == 403
    w.assert_healthy()
    led = _ledger(target)
    with led.store.read() as conn:
        assert login_codes.peek(conn, code) == ("reader", "mallory@example.com")  # unused
    led.close()


def test_logging_out_revokes_the_session(target):
    cookie = _session(target)
    assert target.request("GET", "/", headers={"Cookie": f"{COOKIE}={cookie}"}).status == 200
    evil = f"http://127.0.0.1:{target.port + 1}"
    assert target.request("POST", "/logout", b"", _form(cookie, evil)).status == 403
    resp = target.request("POST", "/logout", b"", _form(cookie, target.origin))
    assert resp.status == 303
    resp = target.request("GET", "/", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert resp.status == 303 and resp.headers["location"].startswith("/login")


def test_security_headers_and_no_caching_of_tokens_and_decisions(target):
    checks = [target.request("GET", "/healthz"), target.request("GET", "/login"),
              target.request("POST", "/api/v1/tokens", b'{"role": "reader"}',
                             {**target.bearer("admin"), "Content-Type": "application/json"}),
              target.request("GET", "/api/v1/decisions", headers=target.bearer("reader"))]
    assert [r.status for r in checks] == [200, 200, 200, 200]
    for resp in checks:
        h = resp.headers
        assert h["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
        assert h["cache-control"] == "no-store"
    css = target.request("GET", "/static/dashboard.css")
    assert css.headers["cache-control"].startswith("public")


def test_no_api_docs_page_and_no_anonymous_schema(target):
    for path in ("/api/v1/docs", "/docs", "/redoc"):
        assert target.request("GET", path).status == 404, path
    assert target.request("GET", "/api/v1/openapi.json").status == 401
    doc = target.request("GET", "/api/v1/openapi.json", headers=target.bearer("reader"))
    assert doc.status == 200 and b"cdn" not in doc.body.lower()
