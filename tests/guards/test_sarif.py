"""``modelward check --format sarif`` against the OASIS SARIF 2.1.0 schema and against
what GitHub code scanning documents it accepts on upload (tests/sarif_checks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import modelward
from modelward.cli.app import app
from modelward.guards import registry
from modelward.guards.finding import Finding
from modelward.guards.runner import Report
from modelward.guards.sarif import LEDGER_PSEUDO_FILE, MAX_RESULTS, render

from ..conftest import database_url
from ..sarif_checks import github_upload_problems, schema_errors
from .builders import HOUR, MIN, T0, move, put, record

GHOST = "sha256:" + "ab" * 32


CONFIG = """\
# which guards CI runs
[check]
select = ["MW0", "MW1"]

[check.MW105]
grace = "30m"

[[check.suppress]]
code = "MW104"
subject = "nothing/*"
reason = "kept for the vendor migration"
"""


@pytest.fixture
def repo(tmp_path, monkeypatch, request):
    """A checkout with modelward.toml at its root, the working directory of the run."""
    (tmp_path / "modelward.toml").write_text(CONFIG)
    url = database_url("sqlite-file", tmp_path, request)
    home = str(tmp_path / "home")
    led = modelward.open(home, database_url=url)
    store = led.store
    v3 = put(store, "model", b"weights-v3", "chat", "v3")
    v4 = put(store, "model", b"weights-v4", "chat", "v4")
    move(store, "chat/v1", v3, T0)
    move(store, "chat/v1", v4, T0 + HOUR)
    record(store, [dict(at=T0 + i * 20 * MIN, alias="chat/v1", process="worker-9",
                        model_digest=v3) for i in range(9)]
           + [dict(at=T0 + 2 * HOUR + i * MIN, model_digest=v4, prompt_digest=GHOST,
                   process="web-1") for i in range(2)])
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MODELWARD_")]:
        monkeypatch.delenv(key)
    yield SimpleNamespace(tmp=tmp_path, args=["--home", home, "--database-url", url],
                          config=tmp_path / "modelward.toml")
    led.close()


def sarif_of(repo, *extra) -> dict:
    result = CliRunner().invoke(app, [*repo.args, *extra, "check", "--format", "sarif"])
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)


def test_sarif_is_valid_and_github_accepts_it(repo):
    doc = sarif_of(repo)
    assert schema_errors(doc) == []
    assert github_upload_problems(doc) == []
    # the schema does judge: a wrong version and a result without a message fail it
    broken = json.loads(json.dumps(doc))
    broken["version"] = "2.0.0"
    del broken["runs"][0]["results"][0]["message"]
    assert len(schema_errors(broken)) >= 2
    run = doc["runs"][0]
    codes = [(r["ruleId"], r.get("suppressions") is not None) for r in run["results"]]
    assert codes == [("MW101", False), ("MW001", False), ("MW105", False)]


def test_every_result_points_at_the_line_that_configures_its_guard(repo):
    lines = repo.config.read_text().splitlines()
    doc = sarif_of(repo)
    where = {r["ruleId"]: r["locations"][0] for r in doc["runs"][0]["results"]}
    physical = {code: (loc["physicalLocation"]["artifactLocation"]["uri"],
                       loc["physicalLocation"]["region"]["startLine"])
                for code, loc in where.items()}
    assert physical == {"MW101": ("modelward.toml", 2),   # no table of its own: [check]
                        "MW105": ("modelward.toml", 5),   # [check.MW105]
                        "MW001": ("modelward.toml", 8)}   # the unused [[check.suppress]]
    assert {code: lines[n - 1] for code, (_uri, n) in physical.items()} == {
        "MW101": "[check]", "MW105": "[check.MW105]", "MW001": "[[check.suppress]]"}
    assert where["MW105"]["logicalLocations"] == [{"name": "chat/v1", "kind": "resource"}]


def test_without_a_config_in_the_checkout_results_point_at_the_ledger_pseudo_file(repo):
    elsewhere = repo.tmp / "ci-config" / "modelward.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(CONFIG)
    os.chdir(repo.tmp / "home")  # the working directory no longer holds the config
    doc = sarif_of(repo, "--config", str(elsewhere))
    assert schema_errors(doc) == [] and github_upload_problems(doc) == []
    assert {(loc["physicalLocation"]["artifactLocation"]["uri"],
             loc["physicalLocation"]["region"]["startLine"])
            for r in doc["runs"][0]["results"] for loc in r["locations"]} == {
        (LEDGER_PSEUDO_FILE, 1)}


def test_rules_carry_the_shipped_docs_and_link_docs_url_when_set(repo, monkeypatch):
    rules = {r["id"]: r for r in sarif_of(repo)["runs"][0]["tool"]["driver"]["rules"]}
    assert all("helpUri" not in r for r in rules.values())
    assert "informationUri" not in sarif_of(repo)["runs"][0]["tool"]["driver"]
    mw105 = rules["MW105"]
    assert mw105["help"]["text"].startswith(registry.load("MW105").__doc__.strip()[:60])
    assert "\n## What it checks\n" in mw105["help"]["markdown"]
    assert "\n## How to fix\n" in mw105["help"]["markdown"]
    monkeypatch.setenv("MODELWARD_DOCS_URL", "https://git.example.com/acme/ml/blob/main/docs/guards")
    doc = sarif_of(repo)
    driver = doc["runs"][0]["tool"]["driver"]
    assert [r["helpUri"] for r in driver["rules"]][:2] == [
        "https://git.example.com/acme/ml/blob/main/docs/guards/MW101.md",
        "https://git.example.com/acme/ml/blob/main/docs/guards/MW102.md"]
    assert driver["informationUri"] == "https://git.example.com/acme/ml/blob/main/docs/guards/index.md"
    assert schema_errors(doc) == [] and github_upload_problems(doc) == []


def test_a_docs_url_that_is_not_an_absolute_url_is_a_configuration_error(repo):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
    env["MODELWARD_DOCS_URL"] = "docs/guards/"
    proc = subprocess.run([sys.executable, "-m", "modelward.cli.app", *repo.args, "check",
                           "--format", "sarif"], cwd=repo.tmp, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: docs_url is 'docs/guards/', not an absolute "
                                  "http(s) URL\nhint: e.g. docs_url =")


def test_more_results_than_github_accepts_keeps_the_most_severe_and_says_so(tmp_path):
    findings = [Finding("MW101", "error", f"sha256:{i:064x}", f"decision {i}",
                        {"n": i}, identity=("n",)) for i in range(MAX_RESULTS + 3)]
    report = Report(findings=findings, suppressed=[], guards_run=["MW101"], planned=[],
                    fail_on="warning", now=T0, since=None)
    doc = json.loads(render(report, root=tmp_path))
    run = doc["runs"][0]
    assert len(run["results"]) == MAX_RESULTS
    assert run["results"][-1]["message"]["text"] == f"decision {MAX_RESULTS - 1}"
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["message"]["text"].startswith(f"3 of {MAX_RESULTS + 3} results left out")
    assert github_upload_problems(doc) == []
    # the checks themselves fail on what GitHub rejects
    run["results"].append(dict(run["results"][0], locations=[{"logicalLocations": [{}]}]))
    assert github_upload_problems(doc)[-2:] == [f"run 0: {MAX_RESULTS + 1} results",
                                                f"run 0 result {MAX_RESULTS}: expected a "
                                                "physical location"]
