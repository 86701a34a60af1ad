"""Guards that run by themselves: ``alerts.watch`` runs them after writes seal new blocks
and on a schedule, records each run and sends the alerts; ``modelward serve --watch``
does it inside the server, so a bad decision posted to the API reaches the webhook with no
`check` run by anyone."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from modelward.alerts.watch import watch
from modelward.ledger import artifacts
from modelward.ledger import findings as ledger_findings

from ..web import apiclient
from ..web.apiclient import error
from ..web.browser import Server
from ..web.browser import modelward as cli
from .receiver import Receiver
from .test_alerts import GHOST, GHOST_DIGEST, configure, stray_decisions

api = apiclient.api  # the fixture


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _until(what, probe, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (got := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.05)
    return got


def test_new_blocks_start_a_run_and_its_alerts_go_out(ledger, tmp_path, monkeypatch,
                                                      receiver):
    settings = configure(tmp_path, monkeypatch, receiver)
    runs = []
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(ledger.store, settings), kwargs={
        "interval": 3600, "min_gap": 0.2, "poll": 0.05, "stop": stop, "on_run": runs.append})
    thread.start()
    try:
        _until("the first run", lambda: runs)
        assert runs[0].reason == "start" and receiver.at("/hook") == []
        t0 = time.monotonic()
        stray_decisions(ledger)  # seals blocks: the watcher runs, MW101 opens, one alert
        [msg] = _until("the opening alert", lambda: receiver.at("/hook"))
        detected = time.monotonic() - t0
        assert msg.json()["state"] == "opened" and msg.json()["finding"]["code"] == "MW101"
        # the alert goes out before the loop reports its run
        got = _until("the run", lambda: [r for r in runs if r.reason == "new blocks"])
        assert any("MW101" in r.guards for r in got)
        artifacts.register_bytes(ledger.store, "model", GHOST, name="ghost")
        _until("the resolution", lambda: len(receiver.at("/hook")) == 2)
        assert receiver.at("/hook")[1].json()["state"] == "resolved"
    finally:
        stop.set()
        thread.join(30)
    assert detected < 30  # a generous bound: the figure itself is bench/detect.py's
    with ledger.store.read() as conn:
        assert ledger_findings.by_state(conn, "open", guard="MW101") == []
        [gone] = ledger_findings.by_state(conn, "resolved", guard="MW101")
    assert gone["subject"] == GHOST_DIGEST


def test_the_schedule_runs_when_nothing_is_written(ledger, tmp_path, monkeypatch, receiver):
    settings = configure(tmp_path, monkeypatch, receiver)
    runs = []
    clock = iter(range(0, 10_000, 50))  # each reading 50 "seconds" on: past the interval
    stop = threading.Event()

    def seen(ran):
        runs.append(ran)
        if len(runs) == 3:
            stop.set()
    watch(ledger.store, settings, interval=100, min_gap=0, poll=0, stop=stop,
          on_run=seen, clock=lambda: next(clock))
    assert [r.reason for r in runs] == ["start", "schedule", "schedule"]


def test_the_lifecycle_through_the_api(api, receiver):
    from ..web.test_api import decision

    model = apiclient.seed_model(api.store)
    api.post("/api/v1/decisions", json=[decision(model, model_digest=GHOST_DIGEST)])
    watch(api.store, api.store.settings, interval=3600, once=True)
    body = api.get("/api/v1/findings", params={"state": "open"}).json()
    assert body["state"] == "open" and body["count"] >= 1
    [f] = [f for f in body["findings"] if f["code"] == "MW101"]
    assert f["state"] == "open" and f["opened_at"] and f["last_seen_at"] and f["runs"] == 1
    assert api.get("/api/v1/findings", params={"state": "resolved"}).json()["count"] == 0
    only = api.get("/api/v1/findings", params={"state": "all", "select": "MW2"}).json()
    assert all(x["code"].startswith("MW2") for x in only["findings"])
    assert error(api.get("/api/v1/findings", params={"state": "closed"}), 422)
    assert error(api.get("/api/v1/findings", params={"state": "open", "select": "XX"}), 422)


def test_watch_once_from_the_cli_and_bad_options(tmp_path):
    import modelward

    home = tmp_path / "home"
    led = modelward.open(str(home))
    led.record(alias="chat/v1", model_digest=GHOST_DIGEST, subject="u1")
    led.close()
    res = cli(home, "watch", "--once")
    assert res.returncode == 0, res.stderr
    assert "(start, block " in res.stdout and "findings in" in res.stdout
    assert cli(home, "watch", "--interval", "soon").returncode == 2


def test_serve_watch_alerts_on_a_bad_decision_posted_to_the_api(tmp_path, monkeypatch,
                                                                 receiver):
    import modelward
    from modelward.ids import uuid7
    from modelward.ledger import tokens as ledger_tokens

    home = tmp_path / "home"
    led = modelward.open(str(home))
    with led.store.write() as conn:
        writer = ledger_tokens.create(conn, role="writer", name="w", email="w@example.com")[1]
    led.close()
    (home / "modelward.toml").write_text(f"""
[modelward]
watch_interval = "1h"

[[alerts.channels]]
name = "chat"
kind = "slack"
url = "{receiver.url}/slack"
""")
    server = Server(home)
    try:
        time.sleep(1.0)  # the first (empty) run
        t0 = time.monotonic()
        req = urllib.request.Request(
            server.url + "/api/v1/decisions", method="POST",
            data=json.dumps([{"id": uuid7(), "alias": "chat/v1",
                              "model_digest": GHOST_DIGEST}]).encode(),
            headers={"Authorization": f"Bearer {writer}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.load(resp)["inserted"] == 1
        [msg] = _until("the Slack message", lambda: receiver.at("/slack"), timeout=120)
        took = time.monotonic() - t0
        assert "MW101" in msg.json()["text"] and "opened" in msg.json()["text"]
    finally:
        server.stop()
    assert took < 120
