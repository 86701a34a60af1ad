"""docs/api.md documents every API route, and the OpenAPI document describes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import apiclient
from .apiclient import api_routes

api = apiclient.api  # the fixture
DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented() -> set[tuple[str, str]]:
    found = set()
    for method, path in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`?\s]*)", DOC.read_text()):
        found.add((method, path))
    return found


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_every_api_route_is_documented_and_nothing_else(api):
    routes = {(m, p.replace(":path}", "}")) for m, p, _roles in api_routes(api.client.app)
              if p.startswith("/api/v1/") and p not in apiclient.PUBLIC}
    routes.add(("GET", "/healthz"))
    docs = documented()
    assert sorted(routes - docs) == [], "routes missing from docs/api.md"
    assert sorted({d for d in docs if d[1].startswith("/api/")} - routes) == [], \
        "docs/api.md documents routes the app does not have"


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_every_api_operation_has_a_summary_in_the_openapi_document(api):
    doc = api.get("/api/v1/openapi.json").json()
    missing = [f"{m.upper()} {p}" for p, ops in doc["paths"].items() if p.startswith("/api/")
               for m, op in ops.items() if not op.get("description")]
    assert missing == []
