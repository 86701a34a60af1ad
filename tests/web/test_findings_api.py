"""GET /api/v1/findings/latest and the findings page's /findings/state on every backend:
the latest recorded run, ranked and filtered, new since the previous run, the background
run that refreshes it, and each bad filter answered with the one error envelope."""

from __future__ import annotations

import pytest

from modelward.guards.history import run_and_record
from modelward.ledger import findings as ledger_findings
from modelward.web import checkruns
from modelward.web.auth import COOKIE

from . import apiclient
from .apiclient import error, seed_model
from .test_api import decision

api = apiclient.api  # the fixture

pytestmark = pytest.mark.usefixtures("api")
LATEST = "/api/v1/findings/latest"


def _stale_worker(api, process="worker-9", n=2):
    """chat/v1 moves v1 -> v2 an hour ago; ``process`` keeps naming v1 (MW105)."""
    from modelward.ledger import aliases
    from modelward.timefmt import iso, now_us

    with api.store.read() as conn:
        v1 = aliases.resolve_at(conn, "chat/v1", now_us()).digest
    v2 = seed_model(api.store, content=b"weights-2")
    at = now_us()
    resp = api.post("/api/v1/decisions", json=[
        decision(v1, process=process, at=iso(at - i * 1_000_000)) for i in range(n)])
    assert resp.status_code == 200, resp.text
    return v1, v2


def test_the_first_read_starts_a_background_run_and_then_serves_it(api):
    seed_model(api.store)
    first = api.get(LATEST).json()
    assert first["run"] is None and first["state"]["status"] == "running"
    assert first["groups"] == [] and first["total"] == 0
    assert checkruns.wait(api.client.app)
    done = api.get(LATEST).json()
    assert done["state"]["status"] == "ready" and done["run"]["source"] == "dashboard"
    assert done["run"]["status"] == "done" and done["previous_run"] is None
    assert "MW105" in done["run"]["guards"]
    # fresh: no second run is started while the latest is younger than findings_max_age
    assert checkruns.ensure_fresh(api.client.app) is False


def test_a_recorded_check_run_is_ranked_filtered_and_new_is_marked(api):
    model = seed_model(api.store)
    settings = api.store.settings
    api.post("/api/v1/decisions", json=[decision(model, model_digest="sha256:" + "e" * 64)])
    _, first = run_and_record(api.store, settings, source="check", select="MW101")
    body = api.get(LATEST).json()
    assert body["state"]["status"] == "ready" and body["run"]["id"] == first
    [group] = body["groups"]
    assert (group["code"], group["severity"], group["findings"], group["decisions"],
            group["new"]) == ("MW101", "error", 1, 1, 1)
    [f] = body["findings"]
    assert f["new"] is True and f["opened_at"] == body["run"]["now"] and f["runs"] == 1
    assert {"kind": "digest", "id": "sha256:" + "e" * 64} in f["refs"]
    assert any(r["kind"] == "decision" for r in f["refs"])  # the example decision
    api.post("/api/v1/decisions", json=[decision(model, model_digest="sha256:" + "f" * 64)])
    _, second = run_and_record(api.store, settings, source="check", select="MW101")
    body = api.get(LATEST).json()
    assert body["previous_run"]["id"] == first and body["run"]["id"] == second
    new = {f["subject"]: f["new"] for f in body["findings"]}
    assert new == {"sha256:" + "f" * 64: True, "sha256:" + "e" * 64: False}
    assert body["findings"][0]["new"] is True  # the new one first
    only_new = api.get(LATEST, params={"new": "true"}).json()
    assert [f["subject"] for f in only_new["findings"]] == ["sha256:" + "f" * 64]
    assert (only_new["total"], only_new["shown"]) == (2, 1)
    assert api.get(LATEST, params={"q": "eeeeeeee"}).json()["shown"] == 1
    assert api.get(LATEST, params={"severity": "warning"}).json()["shown"] == 0
    assert api.get(LATEST, params={"guard": "mw10"}).json()["filters"]["guard"] == "MW10"
    assert api.get(LATEST, params={"since": "1h"}).json()["shown"] == 2
    with api.store.read() as conn:
        [later, earlier] = ledger_findings.recent_runs(conn, 2)
    assert (later.id, earlier.id) == (second, first)


@pytest.mark.parametrize("params, field", [
    ({"severity": "fatal"}, "severity"), ({"guard": "XX1"}, "guard"),
    ({"since": "soon"}, "since"), ({"q": "x" * 201}, "q"), ({"new": "perhaps"}, "new"),
])
def test_a_bad_filter_is_a_422_naming_it(api, params, field):
    assert error(api.get(LATEST, params=params), 422)["field"] == field


def test_the_page_state_answers_the_logged_in_browser_only(api):
    seed_model(api.store)
    client = api.client
    assert client.get("/findings/state", follow_redirects=False).status_code in (303, 307)
    client.cookies.set(COOKIE, api.secrets["reader"])
    try:
        state = client.get("/findings/state").json()
        assert state["status"] in ("none", "running", "ready")
        page = client.get("/")  # starts the first run; answers at once with progress
        assert page.status_code == 200 and 'id="run-state"' in page.text
        assert checkruns.wait(client.app)
        state = client.get("/findings/state").json()
        assert state["status"] == "ready" and state["run"] and state["progress"] is None
        assert 'id="ranked"' in client.get("/").text or "No findings" in client.get("/").text
    finally:
        client.cookies.clear()
