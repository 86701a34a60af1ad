"""schemathesis against the OpenAPI document, in-process: no generated request (valid or
not) may get a 5xx, and every refusal is the one error envelope. Bounded: a few examples
per operation, no deadline (well under 2 minutes)."""

from __future__ import annotations

import os
import uuid

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

import modelward
from modelward.ledger import tokens as ledger_tokens
from modelward.web.app import create_app

from ..conftest import PG_URL, _pg_schema_url
from .apiclient import seed_model

EXAMPLES = 12


@pytest.fixture(scope="module", params=["sqlite-file", "postgres"])
def fuzzed(request, tmp_path_factory):
    """(the app's OpenAPI schema loaded by schemathesis, an admin token's headers) over a
    SQLite file and PostgreSQL (where a NUL byte or an out-of-range integer would fail)."""
    home = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{home / 'ledger.db'}"
    schema_name = None
    if request.param == "postgres":
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail("MODELWARD_TEST_POSTGRES_URL is required under CI")
            pytest.skip("MODELWARD_TEST_POSTGRES_URL not set")
        schema_name = "mw_fuzz_" + uuid.uuid4().hex[:10]
        with sa.create_engine(PG_URL).begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema_name}")
        url = _pg_schema_url(schema_name)
    led = modelward.open(str(home), database_url=url)
    seed_model(led.store)  # an alias and an artifact, so some generated reads find things
    with led.store.write() as conn:
        _tok, secret = ledger_tokens.create(conn, role="admin", name="schemathesis",
                                            email="fuzz@example.com")
    app = create_app(led.settings, store=led.store)
    headers = {"Authorization": f"Bearer {secret}"}  # the document needs a token too
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=headers), headers
    led.close()
    if schema_name:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema_name} CASCADE")
        engine.dispose()


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_the_schema_holds_every_api_operation(fuzzed):
    schema, _headers = fuzzed
    labels = {f"{op.method.upper()} {op.path}" for op in operations(schema)}
    assert {"POST /api/v1/decisions", "POST /api/v1/feedback", "POST /api/v1/artifacts",
            "GET /api/v1/findings", "POST /api/v1/promotions/{request_id}/approve"} <= labels
    assert len(labels) >= 33


def test_no_generated_request_gets_a_server_error(fuzzed):
    schema, headers = fuzzed
    failures, calls = [], []
    ops = operations(schema)
    for op in ops:

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(headers=headers)
            calls.append(response.status_code)
            problem = None
            if response.status_code >= 500:
                problem = "a server error"
            elif response.status_code >= 400 and set(response.json()) != {"error"}:
                problem = "not the error envelope"
            if problem:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code} ({problem}): {response.text[:300]}")

        fuzz()
    assert failures == []
    assert len(calls) >= 3 * len(ops)  # it really exercised every operation
    assert any(code < 300 for code in calls) and any(code == 422 for code in calls)
