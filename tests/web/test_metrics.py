"""GET /metrics on every backend: Prometheus's text format, the ledger's figures read at
scrape time, this process's ingest counters, and the token the route requires."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelward.guards.history import run_and_record
from modelward.ledger import chain

from . import apiclient
from .apiclient import error, seed_model
from .test_api import decision

api = apiclient.api  # the fixture


def scrape(api) -> dict[tuple[str, tuple], float]:
    resp = api.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_openmetrics_when_the_scraper_asks_for_it(api):
    resp = api.get("/metrics", headers={"Accept": "application/openmetrics-text; "
                                        "version=1.0.0"})
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    assert resp.text.rstrip().endswith("# EOF")


def test_metrics_need_a_live_token(api):
    assert error(api.client.get("/metrics"), 401)["code"]
    assert error(api.client.get("/metrics", headers={"Authorization": "Bearer nope"}),
                 401)["code"]
    for role in apiclient.ROLES:
        assert api.get("/metrics", role=role).status_code == 200


def test_the_chain_and_the_ingest_counters_follow_what_was_written(api):
    model = seed_model(api.store)
    before = scrape(api)
    with api.store.read() as conn:
        blocks = chain.last_block(conn)[0]
    assert before[("modelward_chain_blocks", ())] == blocks
    assert before[("modelward_decisions_sealed_total", ())] == 0
    assert before[("modelward_records_sealed_total", ())] >= 2  # the artifact and the alias
    assert before[("modelward_api_decisions_total", (("outcome", "inserted"),))] == 0

    batch = [decision(model) for _ in range(7)]
    assert api.post("/api/v1/decisions", json=batch).status_code == 200
    assert api.post("/api/v1/decisions", json=batch[:3]).status_code == 200  # re-sent
    assert api.post("/api/v1/decisions", json=[{"id": "nope"}]).status_code == 422
    after = scrape(api)
    assert after[("modelward_chain_blocks", ())] == blocks + 1
    assert after[("modelward_decisions_sealed_total", ())] == 7
    assert after[("modelward_api_decisions_total", (("outcome", "inserted"),))] == 7
    assert after[("modelward_api_decisions_total", (("outcome", "duplicates"),))] == 3
    assert after[("modelward_api_decisions_total", (("outcome", "refused"),))] == 1
    assert after[("modelward_api_decision_batches_total", ())] == 2
    assert after[("modelward_chain_last_sealed_timestamp_seconds", ())] > 1.7e9


def test_open_findings_and_guard_runs_come_from_the_recorded_runs(api):
    model = seed_model(api.store)
    unregistered = [decision(model, model_digest="sha256:" + c * 64) for c in "ef"]
    assert api.post("/api/v1/decisions", json=unregistered).status_code == 200
    report, _run = run_and_record(api.store, api.store.settings, source="check")
    mw101 = sum(1 for f in report.findings if f.code == "MW101")
    assert mw101 == 2  # one per digest no artifact has
    got = scrape(api)
    assert got[("modelward_findings_open", (("code", "MW101"), ("severity", "error")))] == 2
    errors = sum(1 for f in report.findings if f.severity == "error")
    assert got[("modelward_findings_open_total", (("severity", "error"),))] == errors
    assert got[("modelward_guard_runs_total", (("source", "check"), ("status", "done")))] == 1
    assert got[("modelward_guard_run_failed", (("source", "check"),))] == 0
    assert got[("modelward_guard_run_duration_seconds", (("source", "check"),))] > 0
    assert got[("modelward_guard_run_timestamp_seconds", (("source", "check"),))] > 1.7e9


def test_the_metrics_route_is_in_the_auth_matrix_as_any_token(api):
    routes = {(m, p): roles for m, p, roles in apiclient.api_routes(api.client.app)}
    assert set(routes[("GET", "/metrics")]) == {"reader", "writer", "approver", "admin"}


@pytest.mark.parametrize("listen", ["nope", "127.0.0.1:", ":80", "127.0.0.1:99999"])
def test_a_bad_metrics_listen_is_refused_before_serving(tmp_path, listen):
    from .browser import modelward

    res = modelward(tmp_path, "serve", "--metrics-listen", listen)
    assert res.returncode == 2
    assert "--metrics-listen wants HOST:PORT" in res.stderr


def test_metrics_listen_is_one_process_only(tmp_path):
    from .browser import modelward

    res = modelward(tmp_path, "serve", "--workers", "2", "--metrics-listen", "127.0.0.1:9")
    assert res.returncode == 2 and "--workers 1" in res.stderr


def test_how_far_verification_lags_the_chain(api, tmp_path):
    from modelward.ledger import checkpoints

    from ..ledger.test_heads import keys as make_keys

    model = seed_model(api.store)
    before = scrape(api)
    assert before[("modelward_chain_checkpoint_block", ())] == 0
    assert ("modelward_chain_checkpoint_timestamp_seconds", ()) not in before
    key = make_keys(tmp_path, sign=True)
    with api.store.read() as conn:
        report = checkpoints.verify(conn, key, full=True)
    with api.store.write() as conn:
        cp = checkpoints.store(conn, report, key)
    assert api.post("/api/v1/decisions", json=[decision(model)]).status_code == 200
    got = scrape(api)
    assert got[("modelward_chain_checkpoint_block", ())] == cp.block
    assert got[("modelward_chain_blocks_after_checkpoint", ())] == 1
    assert got[("modelward_chain_checkpoint_timestamp_seconds", ())] == cp.made_at / 1e6
    assert got[("modelward_chain_full_verify_timestamp_seconds", ())] == cp.full_at / 1e6
