"""One answer per question across the surfaces: the API and the dashboard read what the
guards judge, on every backend."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modelward.guards import run as run_guards
from modelward.web.app import create_app
from modelward.web.auth import COOKIE

from ..rollout.world import canary_arm, canary_population, create, expose, write_population
from . import apiclient

api = apiclient.api  # the fixture


@pytest.fixture
def configured(tmp_path):
    """A modelward.toml (in the working directory, where settings find it) naming the
    pre-period population MW402 judges, relative to its own directory; written before the
    ledger opens."""
    write_population(tmp_path / "users-pre.csv", canary_population())
    (tmp_path / "modelward.toml").write_text('[check.MW402]\npre_period = "users-pre.csv"\n')
    return tmp_path


def test_experiment_balance_reads_the_pre_period_population_MW402_judges(configured, api):
    """The canary recorded no population at creation; modelward.toml names one for MW402.
    MW402 flagged imbalance while the dashboard said "balance not checked": both now read
    rollout.population.pre_period_of."""
    store = api.store
    assert store.settings.config_path == configured / "modelward.toml"
    create(store, "canary", "unused: bucketed by id % 100")
    rows = canary_population()
    expose(store, "canary", [(r["subject"], canary_arm(r["subject"])) for r in rows],
           step=1000)
    found = sorted((f.evidence["arm"], f.evidence["covariate"], f.evidence["smd"])
                   for f in run_guards(store, store.settings, select="MW402").findings)
    assert [(a, c) for a, c, _ in found] == [("treatment", "sessions_30d"),
                                             ("treatment", "spend_90d")]
    check = api.get("/api/v1/experiments/canary/check").json()
    assert check["pre_period"]["source"].endswith("users-pre.csv")
    assert check["pre_period"]["matched"] == len(rows)
    flagged = sorted((d["arm"], d["covariate"], round(d["smd"], 4)) for d in check["balance"]
                     if d["flagged"])
    assert flagged == found and check["alarm"]
    page = TestClient(create_app(store.settings, store=store))
    page.cookies.set(COOKIE, api.secrets["reader"])
    html = page.get("/experiments/canary").text
    assert "balance not checked" not in html and "sessions_30d" in html


@pytest.mark.parametrize("path", ["/decisions?subject=a%00b", "/aliases?alias=chat%00v1",
                                  "/fingerprints?alias=embed%00v1"])
def test_a_NUL_byte_in_a_page_query_is_refused_as_the_API_refuses_it(api, path):
    """The pages and the API look the ledger up through one store_of: a NUL byte is a
    422 naming the parameter (on PostgreSQL it was a storage error on the pages)."""
    page = TestClient(create_app(api.store.settings, store=api.store))
    page.cookies.set(COOKIE, api.secrets["reader"])
    resp = page.get(path)
    assert resp.status_code == 422 and "holds a NUL byte" in resp.text
    assert api.get("/api/v1/decisions", params={"subject": "a\x00b"}).status_code == 422
