"""The limits middleware's rules, in process: gzip bodies that lie, the decompressed-size
limit on its own, origins a proxy adds, and field sizes refused alike on every backend
(422 naming the field; before, PostgreSQL answered 503 and SQLite stored the value)."""

from __future__ import annotations

import zlib

import pytest
from fastapi.testclient import TestClient

from modelward.ledger.artifacts import list_artifacts
from modelward.settings import Settings
from modelward.web.app import create_app
from modelward.web.auth import COOKIE

from ..web import apiclient
from ..web.apiclient import error, make_tokens

api = apiclient.api  # the fixture
MIB = 1 << 20


def _gz(data: bytes) -> bytes:
    return zlib.compress(data, wbits=16 + zlib.MAX_WBITS)


@pytest.fixture
def strict(ledger, tmp_path):
    """An app whose gzip limit is the output size alone (2 MiB; the ratio limit off), and
    which accepts dashboard posts from one proxy origin."""
    settings = Settings({"home": str(tmp_path / "home"), "max_otlp_decompressed": 2 * MIB,
                         "max_decompression_ratio": 1_000_000,
                         "allowed_origins": ["https://mw.example.com"]})
    with TestClient(create_app(settings, store=ledger.store)) as client:
        yield client, make_tokens(ledger.store)


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_gzip_bodies_that_lie_are_refused(strict):
    client, secrets = strict
    headers = {"Authorization": f"Bearer {secrets['writer']}",
               "Content-Type": "application/json", "Content-Encoding": "gzip"}
    whole = _gz(b'{"resourceSpans": []}')
    cases = {"truncated": (whole[:-6], 400), "trailing": (whole + b"junk", 400),
             "not gzip": (b"plain text", 400), "3 MiB of output": (_gz(bytes(3 * MIB)), 413),
             "honest": (whole, 200)}
    for name, (body, status) in cases.items():
        resp = client.post("/v1/traces", content=body, headers=headers)
        assert resp.status_code == status, (name, resp.text)
        if status != 200:
            assert set(resp.json()) == {"error"}, name
    assert "max_otlp_decompressed" in client.post(
        "/v1/traces", content=_gz(bytes(3 * MIB)), headers=headers).json()["error"]["message"]
    resp = client.post("/v1/traces", content=whole, headers={**headers,
                                                             "Content-Encoding": "br"})
    assert resp.status_code == 415


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_allowed_origins_admit_a_proxy_origin_and_nothing_else(strict):
    client, secrets = strict
    form = {"Cookie": f"{COOKIE}={secrets['reader']}",
            "Content-Type": "application/x-www-form-urlencoded"}
    ok = client.post("/logout", headers={**form, "Origin": "https://mw.example.com"},
                     follow_redirects=False)
    assert ok.status_code == 303
    for origin in ("https://mw.example.com.evil.example", "http://evil.example"):
        resp = client.post("/logout", headers={**form, "Origin": origin})
        assert error(resp, 403)["code"] == "cross_origin"


def test_over_long_fields_are_a_422_naming_the_field_on_every_backend(api):
    long = "x" * 400
    resp = api.post("/api/v1/artifacts", data={"kind": "model", "name": long,
                                               "hosted": "openai:gpt-4o"})
    assert error(resp, 422)["field"] == "name"
    resp = api.post("/api/v1/artifacts", data={"kind": "model", "name": "chat",
                                               "hosted": "openai:" + long})
    assert error(resp, 422)["field"] == "hosted"
    resp = api.post("/api/v1/artifacts", data={"kind": "model", "name": "chat",
                                               "version": long, "hosted": "openai:gpt-4o"})
    assert error(resp, 422)["field"] == "version"
    resp = api.post("/api/v1/tokens", role="admin",
                    json={"role": "reader", "email": long + "@example.com"})
    assert error(resp, 422)["field"] == "email"
    resp = api.post("/api/v1/decisions", json=[{"subject": long}])
    assert error(resp, 422)["field"] == "decisions[0].subject"
    with api.store.read() as conn:  # nothing of it was stored
        assert list_artifacts(conn) == []
