"""The experiment page computes its check (MW402's randomisation test takes seconds on a
large experiment) once per state of the ledger: a second load is served from the last
result, and any write — an exposure — makes the next load compute again."""

from __future__ import annotations

from modelward.rollout import report
from modelward.web.auth import COOKIE

from ..rollout.world import create, expose
from . import apiclient

api = apiclient.api  # the fixture


def test_the_check_is_computed_again_only_when_the_ledger_changed(api, monkeypatch):
    create(api.store, "canary", "s4lt")
    expose(api.store, "canary", [(str(i), "treatment" if i % 2 else "control")
                                 for i in range(300)])
    calls = []
    real = report.check_recorded

    def counted(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "check_recorded", counted)
    client = api.client
    client.cookies.set(COOKIE, api.secrets["reader"])
    try:
        first = client.get("/experiments/canary")
        assert first.status_code == 200 and "300" in first.text
        second = client.get("/experiments/canary")
        assert second.status_code == 200 and calls == ["canary"]  # served from the cache
        assert second.text == first.text
        expose(api.store, "canary", [("extra-1", "control")])  # a write seals a block
        third = client.get("/experiments/canary")
        assert third.status_code == 200 and calls == ["canary", "canary"]
        assert "301" in third.text
    finally:
        client.cookies.clear()
