"""``modelward check``, ``explain`` and ``guards`` on SQLite (file) and PostgreSQL."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.digest import of_bytes
from modelward.errors import ConfigError, ValidationError
from modelward.guards import registry

from .builders import HOUR, MIN, T0, healthy, move, put, record

GHOST = of_bytes(b"prompt v99")


# These tests judge the guards of this package (MW0xx, MW1xx), whatever else is active.
PIN = '[check]\nselect = ["MW0", "MW1"]\n'


@pytest.fixture
def pinned(tmp_path):
    """modelward.toml in the working directory, written before the ledger opens."""
    (tmp_path / "modelward.toml").write_text(PIN)


@pytest.fixture
def db(pinned, cli_ledger):
    return cli_ledger


def small(store) -> dict:
    """chat/v1 moved v3 -> v4 at 13:00; worker-9 kept v3; two decisions name a ghost prompt."""
    v3 = put(store, "model", b"weights-v3", "chat", "v3")
    v4 = put(store, "model", b"weights-v4", "chat", "v4")
    move(store, "chat/v1", v3, T0)
    move(store, "chat/v1", v4, T0 + HOUR)
    record(store, [dict(at=T0 + i * 20 * MIN, alias="chat/v1", process="worker-9",
                        model_digest=v3) for i in range(9)]
           + [dict(at=T0 + 2 * HOUR + i * MIN, model_digest=v4, prompt_digest=GHOST,
                   process="web-1") for i in range(2)])
    return {"v3": v3, "v4": v4}


def mw(db, *args):
    return CliRunner().invoke(app, [*db.args, *args])


def mw_process(db, *args):
    """The real entry point in a subprocess, for exit codes of errors (main() -> exit 2)."""
    return subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           *db.args, *args], cwd=db.tmp, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_check_prints_findings_grouped_by_severity(db):
    d = small(db.store)
    result = mw(db, "check")
    assert result.exit_code == 1
    assert result.stdout == f"""config: {db.tmp / 'modelward.toml'}

errors (1)
  MW101 unattributed-decision  {GHOST}
    prompt_digest {GHOST[:19]}… is not a registered artifact but is named by 2 decisions (first 2026-03-01T14:00:00Z, last 2026-03-01T14:01:00Z)
    fix: register the artifact (`modelward register KIND PATH --name …`, or --hosted VENDOR:MODEL_ID); already recorded decisions become attributable

warnings (1)
  MW105 stale-fleet  chat/v1
    worker-9 still named chat@v3 ({d['v3'][:19]}…) for chat/v1 in 4 decisions from 2026-03-01T13:40:00Z to 2026-03-01T14:40:00Z, after chat/v1 moved to chat@v4 ({d['v4'][:19]}…) at 2026-03-01T13:00:00Z (grace 30m)
    fix: resolve the alias per request (ledger.resolve reads the current target) and restart the processes named

2 findings: 1 error, 1 warning, 0 info (7 guards run)
"""


def test_check_on_a_realistic_ledger_is_clean(db):
    healthy(db.store, db.tmp)
    result = mw(db, "check")
    assert (result.exit_code, result.stdout) == (
        0, f"config: {db.tmp / 'modelward.toml'}\n\nno findings (7 guards run)\n")


def test_exit_codes(db):
    small(db.store)
    assert mw_process(db, "check").returncode == 1
    assert mw_process(db, "check", "--exit-zero").returncode == 0
    assert mw_process(db, "check", "--fail-on", "error").returncode == 1  # MW101 is an error
    assert mw_process(db, "check", "--select", "MW105", "--fail-on", "error").returncode == 0
    bad = mw_process(db, "check", "--select", "MW9")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: --select: 'MW9' matches no guard code\nhint: ")
    assert mw_process(db, "check", "--format", "html").returncode == 2
    (db.tmp / "modelward.toml").write_text(PIN + 'fail_on = "warn"\n')
    config = mw_process(db, "check")
    assert config.returncode == 2 and "check.fail_on is 'warn'" in config.stderr


def test_an_uninitialised_ledger_is_a_storage_error(tmp_path):
    empty = SimpleNamespace(tmp=tmp_path, args=["--home", str(tmp_path / "nowhere")])
    result = mw_process(empty, "check")
    assert result.returncode == 2 and "modelward init" in result.stderr


def test_select_and_ignore_by_prefix(db):
    small(db.store)
    only_105 = mw(db, "check", "--select", "MW1", "--ignore", "MW101")
    assert only_105.stdout.endswith("1 finding: 0 errors, 1 warning, 0 info (4 guards run)\n")
    assert "MW105 stale-fleet" in only_105.stdout and "MW101" not in only_105.stdout
    # the longer prefix wins: MW10 ignores MW101-MW105, MW101 brings one back
    back = mw(db, "check", "--select", "MW101,MW0", "--ignore", "MW10")
    assert back.stdout.endswith("1 finding: 1 error, 0 warnings, 0 info (3 guards run)\n")
    (db.tmp / "modelward.toml").write_text(PIN + 'ignore = ["MW105"]\n')
    assert "MW105" not in mw(db, "check").stdout
    assert "MW105 stale-fleet" in mw(db, "check", "--select", "MW105").stdout


def test_suppressions_with_reason_and_expiry(db):
    small(db.store)
    (db.tmp / "modelward.toml").write_text(PIN + """
[[check.suppress]]
code = "MW105"
subject = "chat/v1"
reason = "worker-9 pins v3 until the nightly restart"
expires = 2999-12-31

[[check.suppress]]
code = "MW101"
subject = "sha256:*"
reason = "the prompt store migration"
expires = 2026-01-01

[[check.suppress]]
code = "MW103"
subject = "block 7"
reason = "restored from backup"
""")
    result = mw(db, "check")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1
    assert "  MW101 unattributed-decision  " + GHOST in lines  # expired: reported again
    assert ("    suppression 2 (MW101 subject 'sha256:*') expired on 2026-01-01T00:00:00Z: "
            "renew it or delete it") in lines
    assert ("    suppression 3 (MW103 subject 'block 7') matched no finding: delete it") in lines
    assert "MW105" not in result.stdout
    assert lines[-1] == "3 findings: 1 error, 2 warnings, 0 info (7 guards run, 1 suppressed)"
    (db.tmp / "modelward.toml").write_text(PIN + '[[check.suppress]]\ncode = "MW105"\nsubject = "x"\n')
    missing = mw(db, "check")
    assert isinstance(missing.exception, ConfigError)
    assert "check.suppress[1].reason is required" in str(missing.exception)


def test_every_format_parses(db):
    small(db.store)
    data = json.loads(mw(db, "check", "--format", "json").stdout)
    assert data["summary"] == {"error": 1, "warning": 1, "info": 0, "suppressed": 0, "failing": 2}
    assert [f["code"] for f in data["findings"]] == ["MW101", "MW105"]
    assert all(len(f["fingerprint"]) == 16 for f in data["findings"])

    suites = ET.fromstring(mw(db, "check", "--format", "junit").stdout)
    suite = suites.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "2", "0")
    failed = [c.get("classname") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["MW101", "MW105"]

    github = mw(db, "check", "--format", "github").stdout.splitlines()
    assert github[0].startswith(f"::error title=MW101 unattributed-decision::{GHOST}: prompt_digest")
    assert "%0Afix: register the artifact" in github[0]
    assert github[1].startswith("::warning title=MW105 stale-fleet::chat/v1: worker-9 still")
    assert github[2] == "2 findings: 1 error, 1 warning, 0 info (7 guards run)"

    sarif = json.loads(mw(db, "check", "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["MW101", "MW102", "MW103", "MW104", "MW105",
                                        "MW001", "MW002"]
    assert "helpUri" not in rules[4] and rules[4]["help"]["markdown"]  # tests/guards/test_sarif.py
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [("MW101", "error"),
                                                                   ("MW105", "warning")]
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["locations"][0]["logicalLocations"][0]["name"]
        assert r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
        assert r["partialFingerprints"]["modelwardFingerprint/v1"]


def test_sarif_keeps_suppressed_results_with_their_justification(db):
    small(db.store)
    (db.tmp / "modelward.toml").write_text(
        PIN + '[[check.suppress]]\ncode = "MW105"\nsubject = "chat/v1"\nreason = "nightly restart"\n')
    results = json.loads(mw(db, "check", "--format", "sarif").stdout)["runs"][0]["results"]
    assert [(r["ruleId"], r.get("suppressions")) for r in results] == [
        ("MW101", None),
        ("MW105", [{"kind": "external", "status": "accepted", "justification": "nightly restart"}])]


def test_output_file_and_since(db):
    small(db.store)
    target = db.tmp / "reports" / "check.sarif"
    result = mw(db, "check", "--format", "sarif", "--output", str(target))
    assert result.stdout == "2 findings: 1 error, 1 warning, 0 info (7 guards run)\n"
    assert json.loads(target.read_text())["version"] == "2.1.0"
    later = mw(db, "check", "--since", "2026-03-01T14:30:00Z")
    assert later.stdout.endswith("1 finding: 0 errors, 1 warning, 0 info (7 guards run)\n")
    assert "in 1 decision from 2026-03-01T14:40:00Z" in later.stdout
    assert mw(db, "check", "--since", "7d").stdout.endswith("\n\nno findings (7 guards run)\n")
    bad = mw(db, "check", "--since", "yesterday")
    assert isinstance(bad.exception, ValidationError)
    assert str(bad.exception) == "--since: not an ISO 8601 time or a duration: 'yesterday'"


def test_explain_prints_the_guard_docstring():
    result = CliRunner().invoke(app, ["explain", "mw105"])
    lines = result.stdout.splitlines()
    assert lines[0] == "MW105 stale-fleet (default severity warning, active)"
    assert lines[2] == "Processes still serving an alias's previous digest long after the alias moved."
    for heading in ("What it checks", "Why it matters", "Example", "How to fix", "Configuration"):
        assert heading in lines
    row = next((r for r in registry.CODES if r.status == "planned"), None)
    if row is not None:  # every code may be active; the planned form is checked while one is not
        planned = CliRunner().invoke(app, ["explain", row.code.lower()]).stdout
        assert planned.startswith(f"{row.code} {row.name} (default severity {row.severity}, "
                                  f"planned)\n\nFires when {row.summary}.\n\nThis code is reserved")
    unknown = CliRunner().invoke(app, ["explain", "MW999"])
    assert isinstance(unknown.exception, ValidationError)


def test_guards_lists_the_code_table():
    lines = CliRunner().invoke(app, ["guards"]).stdout.splitlines()
    assert lines[:3] == ["MW001  unused-suppression        warning  active",
                         "MW002  expired-suppression       warning  active",
                         "MW101  unattributed-decision     error    active"]
    assert lines[-1].startswith("MW502  threshold-drift           warning  ")
    table = json.loads(CliRunner().invoke(app, ["guards", "--json"]).stdout)
    assert len(table) == 24 and table[6]["code"] == "MW105"
    assert table[6]["help_uri"].endswith("MW105.md") and table[7]["code"] == "MW201"
    assert [row["help_uri"] is None for row in table] == [row["status"] != "active" for row in table]


def test_check_records_its_run_unless_told_not_to(db):
    from modelward.ledger import findings as ledger_findings

    small(db.store)
    assert mw(db, "check").exit_code == 1
    with db.store.read() as conn:
        [run] = ledger_findings.recent_runs(conn)
        keys = ledger_findings.run_keys(conn, run.id)
    assert (run.source, run.status, run.counts["error"], run.counts["warning"]) == (
        "check", "done", 1, 1)
    assert len(keys) == 2 and "MW105" in run.guards
    assert mw(db, "check", "--no-record").exit_code == 1
    assert mw(db, "check", "--select", "MW105", "--format", "json").exit_code == 1
    with db.store.read() as conn:
        runs = ledger_findings.recent_runs(conn)
        lifecycle = ledger_findings.lifecycles(conn, keys)
    assert [r.guards for r in runs] == [("MW105",), run.guards]  # --no-record left none
    # MW101 did not run the second time: still open; MW105 seen by both runs
    assert sorted((s.code, s.runs, s.resolved_run) for s in lifecycle.values()) == [
        ("MW101", 1, None), ("MW105", 2, None)]
