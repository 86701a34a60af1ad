"""Names that are not URL-friendly: an experiment may be called ``team/exp 1``, ``50%off``,
``ünï/çødé``, ``a/../b``, ``x/check`` or ``..``. Every route that takes a name takes it
with a ``{name:path}`` converter, so each of these reaches its own resource (sent as is or
percent-encoded), the sub-routes still match, and an unknown name is the one JSON 404 —
never another experiment's data, a 5xx or a traceback."""

from __future__ import annotations

from urllib.parse import quote

import pytest

import modelward
from modelward.ledger import experiments as ledger_experiments

from ..rollout.world import expose
from ..web import apiclient
from ..web.apiclient import error

api = apiclient.api  # the fixture

NAMES = ["team/exp 1", "50%off", "ünï/çødé", "a/../b", "x/check", "x", "sp ace/"]
# Starlette's in-process TestClient decodes a path twice (``%252F`` arrives as ``/``), so a
# name holding a percent escape itself is tried against a real ``modelward serve`` below.
SERVED = NAMES + ["%2F", "100%25/..", "..", "."]


@pytest.fixture
def named(api):
    with api.store.write() as conn:
        for i, name in enumerate(NAMES):
            ledger_experiments.create(conn, name, f"salt-{i}",
                                      [("control", 1.0), ("treatment", 1.0)])
    return api


def enc(name: str) -> str:
    return quote(name, safe="")


@pytest.mark.parametrize("name", NAMES)
def test_each_name_reaches_its_own_experiment_and_its_sub_routes(named, name):
    api = named
    assert api.get(f"/api/v1/experiments/{enc(name)}").json()["name"] == name
    pairs = [(f"{name}-u{i}", "treatment" if i % 2 else "control") for i in range(6)]
    batch = [{"subject": s, "arm": a, "metric": float(i)} for i, (s, a) in enumerate(pairs)]
    resp = api.post(f"/api/v1/experiments/{enc(name)}/exposures", json=batch)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"recorded": 6, "duplicates": 0}
    regimes = api.get(f"/api/v1/experiments/{enc(name)}/regimes").json()
    assert regimes["experiment"] == name and regimes["exposures"] == 6
    check = api.get(f"/api/v1/experiments/{enc(name)}/check").json()
    assert check["experiment"]["name"] == name and check["subjects"] == 6


def test_slashes_sent_as_is_still_route_and_an_encoded_tail_is_part_of_the_name(named):
    api = named
    expose(api.store, "x", [("only-x", "control")])
    expose(api.store, "x/check", [("a", "control"), ("b", "treatment")])
    assert api.get("/api/v1/experiments/team/exp%201").json()["name"] == "team/exp 1"
    assert api.get("/api/v1/experiments/team/exp%201/regimes").json()[
        "experiment"] == "team/exp 1"
    # /x/check is the check of x; /x%2Fcheck is the experiment named "x/check"
    assert api.get("/api/v1/experiments/x/check").json()["experiment"]["name"] == "x"
    assert api.get("/api/v1/experiments/x%2Fcheck").json()["name"] == "x/check"
    assert api.get("/api/v1/experiments/x%2Fcheck/check").json()[
        "experiment"]["name"] == "x/check"
    err = error(api.post("/api/v1/experiments/x%2Fexposures", json=[
        {"subject": "s", "arm": "control"}]), 404)
    assert "exposures are posted to /api/v1/experiments/x%2Fexposures/exposures" in \
        err["message"]
    assert api.get("/api/v1/experiments/x/regimes").json()["exposures"] == 1
    assert api.get("/api/v1/experiments/x%2Fcheck/regimes").json()["exposures"] == 2


@pytest.mark.parametrize("path", ["/api/v1/experiments/nope%2Fthere",
                                  "/api/v1/experiments/nope/there/check",
                                  "/api/v1/experiments/%E2%80%AEevil",
                                  "/api/v1/experiments/team/exp%201/check/extra"])
def test_an_unknown_name_is_the_one_404(named, path):
    assert error(named.get(path), 404)["code"] == "not_found"


def test_a_nul_byte_in_a_name_is_refused_naming_the_name(named):
    err = error(named.get("/api/v1/experiments/a%00b/regimes"), 422)
    assert err["code"] == "validation_error" and err["field"] == "name"


def test_a_real_server_routes_every_name_including_percent_escapes_and_dots(target):
    led = modelward.open(str(target.home))
    try:
        with led.store.write() as conn:
            for i, name in enumerate(SERVED):
                if name not in NAMES:
                    ledger_experiments.create(conn, f"served:{name}", f"s-{i}",
                                              [("control", 1.0), ("treatment", 1.0)])
    finally:
        led.close()
    auth = target.bearer("reader")
    for name in SERVED:
        if name in NAMES:
            continue
        full = f"served:{name}"
        got = target.request("GET", f"/api/v1/experiments/{enc(full)}", headers=auth)
        assert got.status == 200 and got.json()["name"] == full, (name, got.body)
        got = target.request("GET", f"/api/v1/experiments/{enc(full)}/regimes", headers=auth)
        assert got.status == 200 and got.json()["experiment"] == full, (name, got.body)
    led = modelward.open(str(target.home))
    try:
        with led.store.write() as conn:
            for name in NAMES:  # and the names above, served rather than in-process
                ledger_experiments.create(conn, f"served:{name}", "s",
                                          [("control", 1.0), ("treatment", 1.0)])
    finally:
        led.close()
    for name in NAMES:
        full = f"served:{name}"
        got = target.request("GET", f"/api/v1/experiments/{enc(full)}/regimes", headers=auth)
        assert got.status == 200 and got.json()["experiment"] == full, (name, got.body)
    got = target.request("GET", "/api/v1/experiments/served%3A%252F%2Fcheck", headers=auth)
    assert got.status == 404 and set(got.json()) == {"error"}
