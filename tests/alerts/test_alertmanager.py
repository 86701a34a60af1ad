"""Debian's Alertmanager receives modelward's alerts: a finding opened by a guard run is an
active alert in its API and reaches the receiver it routes to; the run that resolves the
finding resolves the alert (``send_resolved``)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from modelward.settings import Settings

from ..web.browser import free_port, require_program
from .receiver import Receiver
from .test_alerts import GHOST, run, stray_decisions

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")


def require_alertmanager() -> None:
    require_program(ALERTMANAGER, "`apt-get install -y prometheus-alertmanager` (.ci/run does)",
                    "the Alertmanager tests")


def _until(what, probe, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = probe()
        except OSError:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.3)


@pytest.fixture
def alertmanager(tmp_path):
    require_alertmanager()
    hook = Receiver().start()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: hook
  group_by: [alertname, finding]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook.url}/am
        send_resolved: true
""")
    log = open(tmp_path / "alertmanager.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(ALERTMANAGER), f"--config.file={config}",
                             f"--storage.path={tmp_path / 'am-data'}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _until("Alertmanager ready", lambda: urllib.request.urlopen(
            url + "/-/ready", timeout=2).status == 200)
        yield url, hook
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        hook.stop()


def _alerts(url: str) -> list:
    with urllib.request.urlopen(url + "/api/v2/alerts?active=true", timeout=5) as resp:
        return [a for a in json.load(resp) if a["labels"].get("source") == "modelward"]


def test_a_finding_fires_and_resolves_in_alertmanager(ledger, tmp_path, alertmanager):
    from modelward.ledger import artifacts

    url, hook = alertmanager
    path = tmp_path / "modelward.toml"
    path.write_text(f"""
[alerts]
dashboard_url = "https://modelward.example.com"

[[alerts.channels]]
name = "am"
kind = "alertmanager"
url = "{url}"
min_severity = "error"
""")
    settings = Settings(config_path=path)
    stray_decisions(ledger)
    opened = run(ledger, settings)
    assert (opened.delivered, opened.failed) == (1, 0), opened.errors
    [alert] = _until("the MW101 alert active", lambda: _alerts(url))
    labels = alert["labels"]
    assert (labels["alertname"], labels["code"], labels["severity"]) == ("MW101", "MW101",
                                                                         "error")
    assert alert["annotations"]["fix"] and alert["status"]["state"] == "active"
    assert alert["generatorURL"].startswith("https://modelward.example.com/findings")
    firing = _until("Alertmanager's firing notification", lambda: [
        r.json() for r in hook.at("/am") if r.json()["status"] == "firing"])
    assert firing[0]["alerts"][0]["labels"]["finding"] == labels["finding"]

    artifacts.register_bytes(ledger.store, "model", GHOST, name="ghost")
    resolved = run(ledger, settings)
    assert (resolved.delivered, resolved.failed) == (1, 0), resolved.errors
    _until("the alert gone from the active list", lambda: _alerts(url) == [])
    done = _until("Alertmanager's resolved notification", lambda: [
        r.json() for r in hook.at("/am") if r.json()["status"] == "resolved"])
    assert done[0]["alerts"][0]["labels"]["code"] == "MW101"
