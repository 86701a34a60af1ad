"""``modelward alerts`` and ``modelward check`` with channels, as a user runs them."""

from __future__ import annotations

import json

import pytest

import modelward

from ..web.browser import modelward as cli
from .receiver import Receiver
from .test_alerts import GHOST_DIGEST


@pytest.fixture
def home(tmp_path, monkeypatch):
    receiver = Receiver().start()
    monkeypatch.setenv("MW_TEST_HOOK_SECRET", "k")
    home = tmp_path / "home"
    led = modelward.open(str(home))
    led.record(alias="chat/v1", model_digest=GHOST_DIGEST, subject="u1")
    led.close()
    (home / "modelward.toml").write_text(f"""
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{receiver.url}/hook"
secret_env = "MW_TEST_HOOK_SECRET"
""")
    yield home, receiver
    receiver.stop()


def test_check_sends_the_opening_on_stderr_and_keeps_stdout_the_report(home):
    home, receiver = home
    res = cli(home, "check", "--select", "MW101", "--format", "json")
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["summary"]["error"] == 1  # stdout is the report alone
    assert "alerts: 1 delivered" in res.stderr
    assert [r.json()["finding"]["code"] for r in receiver.at("/hook")] == ["MW101"]
    listed = cli(home, "alerts", "list", "--json")
    assert listed.returncode == 0
    [row] = json.loads(listed.stdout)
    assert (row["channel"], row["code"], row["transition"], row["status"]) == (
        "hook", "MW101", "opened", "delivered")
    assert "hook" in cli(home, "alerts", "list").stdout
    # a second check: the finding is still open, nothing is sent
    again = cli(home, "check", "--select", "MW101")
    assert "alerts: 0 delivered" in again.stderr and len(receiver.at("/hook")) == 1
    # --no-record: no run, no alerts
    cli(home, "check", "--select", "MW101", "--no-record")
    assert len(receiver.at("/hook")) == 1


def test_alerts_test_and_send(home):
    home, receiver = home
    res = cli(home, "alerts", "test", "hook")
    assert res.returncode == 0 and "hook: delivered" in res.stdout
    assert receiver.at("/hook")[0].json()["finding"]["code"] == "MW000"
    res = cli(home, "alerts", "send")
    assert res.returncode == 0 and "alerts: 0 delivered" in res.stdout
    res = cli(home, "alerts", "test", "nope")
    assert res.returncode == 2 and "no alert channel named 'nope'" in res.stderr


def test_bad_input_is_exit_2_naming_it(home):
    home, _receiver = home
    res = cli(home, "alerts", "list", "--status", "lost")
    assert res.returncode == 2 and "--status must be one of" in res.stderr
    (home / "modelward.toml").write_text('[[alerts.channels]]\nname = "x"\nkind = "fax"\n'
                                         'url = "http://x"\n')
    res = cli(home, "check")
    assert res.returncode == 2 and "kind must be one of" in res.stderr
    assert "Traceback" not in res.stderr


def test_findings_ack_list_and_unack_as_a_user_runs_them(home):
    home, _receiver = home
    assert cli(home, "check", "--select", "MW101").returncode == 1
    listed = cli(home, "findings", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    key = row["key"]
    bad = cli(home, "findings", "ack", key, "--reason", "known", "--until", "soon",
              "--as", "ana@example.com")
    assert bad.returncode == 2 and "until" in bad.stderr
    assert cli(home, "findings", "ack", key, "--as", "ana@example.com").returncode == 2
    done = cli(home, "findings", "ack", key, "--reason", "vendor digest pending",
               "--until", "2d", "--as", "ana@example.com")
    assert done.returncode == 0, done.stderr
    assert "acknowledged by ana@example.com until" in done.stdout
    assert cli(home, "check", "--select", "MW101").returncode == 0  # suppressed by the ack
    shown = cli(home, "findings", "list", "--state", "acknowledged")
    assert key in shown.stdout and "acknowledged by ana@example.com" in shown.stdout
    assert cli(home, "findings", "list").stdout.strip() == "no open findings"
    assert cli(home, "findings", "unack", key, "--as", "bo@example.com").returncode == 0
    assert cli(home, "findings", "unack", key, "--as", "bo@example.com").returncode == 2
    assert cli(home, "check", "--select", "MW101").returncode == 1
    assert cli(home, "findings", "list", "--state", "nope").returncode == 2
