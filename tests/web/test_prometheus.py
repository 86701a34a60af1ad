"""Debian's Prometheus scrapes a live ``modelward serve``: once with a token (the API port),
once without (``metrics_listen``), loads docs/monitoring/modelward.rules.yml, and the
series and the alert a recorded guard run opens are read back through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import modelward
from modelward.ledger import aliases, artifacts
from modelward.ledger import tokens as ledger_tokens

from .apiclient import digest
from .browser import ROOT, Server, free_port, require_program
from .browser import modelward as run_cli

PROMETHEUS = Path("/usr/bin/prometheus")
RULES = ROOT / "docs" / "monitoring" / "modelward.rules.yml"
DASHBOARD = ROOT / "docs" / "monitoring" / "grafana-dashboard.json"


def require_prometheus() -> None:
    require_program(PROMETHEUS, "`apt-get install -y prometheus` (.ci/run does)",
                    "the Prometheus tests")


def _post(url: str, token: str, body) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def _query(base: str, expr: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _until(what: str, probe, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = probe()
        except OSError:  # Prometheus still starting
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus never showed {what}")  # its log is kept
        time.sleep(0.5)


@pytest.fixture
def world(tmp_path):
    require_prometheus()
    home = tmp_path / "ledger"
    led = modelward.open(str(home))
    with led.store.write() as conn:
        reader = ledger_tokens.create(conn, role="reader", name="prometheus")[1]
        writer = ledger_tokens.create(conn, role="writer", name="ingest",
                                      email="ingest@example.com")[1]
    art = artifacts.register_bytes(led.store, "model", b"weights-1", name="chat").artifact
    with led.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", art.digest)
    led.close()
    plain = free_port()
    (home / "modelward.toml").write_text(f'[modelward]\nmetrics_listen = "127.0.0.1:{plain}"\n')
    server = Server(home)
    token_file = tmp_path / "token"
    token_file.write_text(reader)
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    shutil.copy(RULES, tmp_path / "modelward.rules.yml")
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [modelward.rules.yml]
scrape_configs:
  - job_name: modelward
    authorization: {{type: Bearer, credentials_file: {token_file}}}
    static_configs: [{{targets: ["127.0.0.1:{server.port}"]}}]
  - job_name: modelward-plain
    static_configs: [{{targets: ["127.0.0.1:{plain}"]}}]
""")
    log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115
    prom = subprocess.Popen([str(PROMETHEUS), f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        yield {"home": home, "server": server, "writer": writer, "model": art.digest,
               "prom": f"http://127.0.0.1:{prom_port}", "log": tmp_path / "prometheus.log"}
    finally:
        prom.terminate()
        prom.wait(20)
        log.close()
        server.stop()


def test_prometheus_scrapes_the_series_and_raises_the_alert(world):
    prom, server = world["prom"], world["server"]
    from modelward.ids import uuid7

    batch = [{"id": uuid7(), "alias": "chat/v1", "model_digest": world["model"],
              "input_digest": digest(f"in-{i}"), "output_digest": digest("out")}
             for i in range(25)]
    assert _post(server.url + "/api/v1/decisions", world["writer"], batch)["inserted"] == 25
    # both scrape jobs are up: the token one and the token-free address
    up = _until("both targets up", lambda: [r for r in _query(prom, "up == 1")
                                            if len(_query(prom, "up == 1")) == 2])
    assert {r["metric"]["job"] for r in up} == {"modelward", "modelward-plain"}
    sealed = _until("25 decisions sealed", lambda: _query(
        prom, 'modelward_decisions_sealed_total{job="modelward"} == 25'))
    assert sealed[0]["value"][1] == "25"
    inserted = _until("the API's insert counter", lambda: _query(
        prom, 'modelward_api_decisions_total{outcome="inserted",job="modelward-plain"} == 25'))
    assert inserted

    # a decision naming a digest no artifact has, then `modelward check` records its run:
    # MW101 opens, Prometheus reads it and the shipped rule's alert goes pending
    stray = {"id": uuid7(), "alias": "chat/v1", "model_digest": "sha256:" + "e" * 64}
    _post(server.url + "/api/v1/decisions", world["writer"], [stray])
    res = run_cli(world["home"], "check", "--select", "MW101", "--exit-zero")
    assert res.returncode == 0, res.stderr
    found = _until("MW101 open", lambda: _query(
        prom, 'modelward_findings_open{code="MW101",severity="error"} == 1'))
    assert found[0]["metric"]["job"] in {"modelward", "modelward-plain"}
    with urllib.request.urlopen(prom + "/api/v1/rules", timeout=10) as resp:
        rules = {r["name"] for g in json.load(resp)["data"]["groups"] for r in g["rules"]}
    assert {"ModelwardErrorFindingOpen", "ModelwardGuardRunFailed"} <= rules

    def pending():
        with urllib.request.urlopen(prom + "/api/v1/alerts", timeout=10) as resp:
            alerts = json.load(resp)["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "ModelwardErrorFindingOpen"
                and a["labels"].get("code") == "MW101"]
    assert _until("the ModelwardErrorFindingOpen alert", pending)[0]["state"] in (
        "pending", "firing")


def test_the_shipped_rules_pass_promtool():
    require_prometheus()
    res = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 8 rules found" in res.stdout


def test_the_dashboard_and_rules_name_only_metrics_modelward_exports(tmp_path):
    """Every modelward_* series the Grafana dashboard and the rules query is one /metrics
    serves (a renamed metric would leave an empty panel and a silent alert)."""
    import re

    from fastapi.testclient import TestClient

    from modelward.web.app import create_app

    led = modelward.open(str(tmp_path / "ledger"))
    with led.store.write() as conn:
        secret = ledger_tokens.create(conn, role="reader", name="r")[1]
    with TestClient(create_app(led.store.settings, store=led.store)) as client:
        text = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"}).text
    led.close()
    exported = set(re.findall(r"^# TYPE (modelward_\w+) (\w+)", text, re.M))
    names = {n for n, _t in exported}
    names |= {n + "_total" for n, t in exported if t == "counter"}
    dash = json.loads(DASHBOARD.read_text())
    queried = {m for p in dash["panels"] for t in p["targets"]
               for m in re.findall(r"modelward_\w+", t["expr"])}
    queried |= set(re.findall(r"modelward_\w+", RULES.read_text()))
    assert queried and queried <= names, queried - names
