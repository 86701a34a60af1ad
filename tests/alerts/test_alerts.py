"""Alerts end to end on every backend: a guard run opens a finding, each routed channel
gets one signed message with the fix and dashboard links, a second run sends nothing, the
run that resolves it sends one more; failures are retried with backoff and recorded."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from modelward.alerts.config import load
from modelward.alerts.deliver import deliver_due, notify
from modelward.errors import ConfigError
from modelward.guards.history import run_and_record
from modelward.ledger import alerts as ledger_alerts
from modelward.ledger import aliases, artifacts
from modelward.settings import Settings

from .receiver import Receiver

SECRET = "s3cret-webhook-key"
GHOST = b"weights-registered-later"
GHOST_DIGEST = "sha256:" + hashlib.sha256(GHOST).hexdigest()


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def configure(tmp_path, monkeypatch, receiver, extra: str = "") -> Settings:
    monkeypatch.setenv("MW_TEST_HOOK_SECRET", SECRET)
    path = tmp_path / "modelward.toml"
    path.write_text(f"""
[alerts]
dashboard_url = "https://modelward.example.com/"

[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{receiver.url}/hook"
secret_env = "MW_TEST_HOOK_SECRET"
codes = ["MW1"]
min_severity = "warning"

[[alerts.channels]]
name = "chat"
kind = "slack"
url = "{receiver.url}/slack"
codes = ["MW2"]
{extra}
""")
    return Settings(config_path=path)


def stray_decisions(ledger, n: int = 3) -> list[str]:
    """Decisions naming a digest no artifact has (MW101, error) under a hostile alias."""
    art = artifacts.register_bytes(ledger.store, "model", b"weights-1", name="chat").artifact
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", art.digest)
    ids = [ledger.record(alias="chat/v1", model_digest=GHOST_DIGEST, subject=f"u{i}")
           for i in range(n)]
    ledger.flush()
    return ids


def run(ledger, settings):
    _report, run_id = run_and_record(ledger.store, settings, source="check", select="MW101")
    return notify(ledger.store, settings, run_id, sleep=lambda s: None)


def test_one_signed_message_per_opening_and_one_per_resolution(ledger, tmp_path, monkeypatch,
                                                               receiver):
    settings = configure(tmp_path, monkeypatch, receiver)
    ids = stray_decisions(ledger)
    first = run(ledger, settings)
    assert (first.queued, first.delivered, first.failed) == (1, 1, 0)
    [msg] = receiver.at("/hook")
    assert receiver.at("/slack") == []  # MW101 is not routed to the MW2 channel
    body = msg.json()
    assert body["schema"] == "modelward.alert/1" and body["state"] == "opened"
    f = body["finding"]
    assert (f["code"], f["severity"], f["subject"]) == ("MW101", "error", GHOST_DIGEST)
    assert f["fix"] and "register" in f["fix"].lower()
    urls = {link["kind"]: link["url"] for link in body["links"]}
    assert urls["findings"] == "https://modelward.example.com/findings?guard=MW101"
    assert any(link["kind"] == "decision" and link["id"] in ids
               and link["url"] == f"https://modelward.example.com/decisions/{link['id']}"
               for link in body["links"])
    # the signature covers timestamp, delivery id and body, keyed with the channel secret
    ts, delivery = msg.headers["X-Modelward-Timestamp"], msg.headers["X-Modelward-Delivery"]
    expected = hmac.new(SECRET.encode(), f"{ts}.{delivery}.".encode() + msg.body,
                        hashlib.sha256).hexdigest()
    assert msg.headers["X-Modelward-Signature"] == "v1=" + expected

    # more decisions of the same finding, another run: still open, nothing sent
    ledger.record(alias="chat/v1", model_digest=GHOST_DIGEST, subject="u9")
    ledger.flush()
    again = run(ledger, settings)
    assert (again.queued, again.delivered) == (0, 0) and len(receiver.at("/hook")) == 1

    # the artifact gets registered: the next run resolves the finding, one more message
    artifacts.register_bytes(ledger.store, "model", GHOST, name="ghost")
    resolved = run(ledger, settings)
    assert (resolved.queued, resolved.delivered) == (1, 1)
    last = receiver.at("/hook")[-1].json()
    assert last["state"] == "resolved" and last["finding"]["resolved_at"]
    assert last["finding"]["key"] == f["key"]
    with ledger.store.read() as conn:
        rows = ledger_alerts.recent(conn)
    assert [(d.transition, d.status, d.attempts) for d in rows] == [
        ("resolved", "delivered", 1), ("opened", "delivered", 1)]


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(ledger, tmp_path,
                                                                  monkeypatch, receiver):
    settings = configure(tmp_path, monkeypatch, receiver)
    stray_decisions(ledger)
    receiver.statuses["/hook"] = [500, 503]  # two failures, then 200
    summary = run(ledger, settings)
    assert (summary.delivered, summary.retrying, summary.failed) == (1, 0, 0)
    hooks = receiver.at("/hook")
    assert len(hooks) == 3  # the same message three times, the same delivery id
    assert len({h.headers["X-Modelward-Delivery"] for h in hooks}) == 1
    assert len({h.body for h in hooks}) == 1
    with ledger.store.read() as conn:
        [d] = ledger_alerts.recent(conn)
    assert (d.status, d.attempts) == ("delivered", 3)


def test_an_unreachable_channel_stays_pending_then_fails_after_max_attempts(
        ledger, tmp_path, monkeypatch, receiver):
    dead = Receiver().start()
    dead_url = dead.url
    dead.stop()  # nothing listens there any more
    settings = configure(tmp_path, monkeypatch, receiver, extra=f"""
[[alerts.channels]]
name = "dead"
kind = "slack"
url = "{dead_url}/gone"
codes = ["MW101"]
max_attempts = 4
""")
    stray_decisions(ledger)
    first = run(ledger, settings)
    assert (first.delivered, first.retrying, first.failed) == (1, 1, 0)  # hook ok, dead waits
    assert any("dead:" in e for e in first.errors)
    with ledger.store.read() as conn:
        [d] = ledger_alerts.recent(conn, status="pending")
        assert d.attempts == 3 and d.last_error.startswith("URLError")
        assert ledger_alerts.due(conn, d.next_attempt_at - 1) == []  # backed off
    # when the backoff has passed, one more attempt reaches max_attempts: failed
    with ledger.store.write() as conn:
        ledger_alerts.mark(conn, d.id, status="pending", attempts=3, next_attempt_at=0,
                           error=d.last_error)
    later = deliver_due(ledger.store, load(settings), sleep=lambda s: None)
    assert (later.failed, later.delivered) == (1, 0)
    with ledger.store.read() as conn:
        [gone] = ledger_alerts.recent(conn, status="failed")
        from modelward.ledger.metrics import snapshot

        deliveries = snapshot(conn).deliveries
    assert gone.attempts == 4
    assert deliveries == {("hook", "delivered"): 1, ("dead", "failed"): 1}  # for /metrics


def test_slack_messages_escape_ledger_text(ledger, tmp_path, monkeypatch, receiver):
    from modelward.alerts.config import Channel
    from modelward.alerts.messages import build
    from modelward.ledger.alerts import Transition

    hostile = "<https://evil.example|click> & <!channel>"
    t = Transition("opened", "r", "k", "MW201", "error", hostile, hostile, "fix " + hostile,
                   {"alias": hostile}, 0, None)
    text = build(Channel("c", "slack", "http://x"), t, "https://dash.example")["text"]
    assert "<https://evil" not in text and "<!channel>" not in text
    assert "&lt;https://evil.example|click&gt; &amp; &lt;!channel&gt;" in text


@pytest.mark.parametrize("table, message", [
    ('[alerts]\nsurprise = 1', "unknown key alerts.surprise"),
    ('[alerts]\ndashboard_url = "ftp://x"', "alerts.dashboard_url must be an http(s) URL"),
    ('[[alerts.channels]]\nname = "a"\nkind = "pager"\nurl = "http://x"', "kind must be one of"),
    ('[[alerts.channels]]\nname = "a"\nkind = "slack"\nurl = "x"', "url must be an http(s)"),
    ('[[alerts.channels]]\nname = "a"\nkind = "webhook"\nurl = "http://x"', "needs secret_env"),
    ('[[alerts.channels]]\nname = "a"\nkind = "webhook"\nurl = "http://x"\n'
     'secret_env = "MW_TEST_UNSET_SECRET"', "$MW_TEST_UNSET_SECRET (secret_env) is not set"),
    ('[[alerts.channels]]\nname = "a"\nkind = "slack"\nurl = "http://x"\ncodes = ["XX1"]',
     "codes must be a list of guard-code prefixes"),
    ('[[alerts.channels]]\nname = "a"\nkind = "slack"\nurl = "http://x"\nmin_severity = "loud"',
     "min_severity must be one of"),
    ('[[alerts.channels]]\nname = "a"\nkind = "slack"\nurl = "http://x"\n'
     '[[alerts.channels]]\nname = "a"\nkind = "slack"\nurl = "http://y"', "is used twice"),
    ('[[alerts.channels]]\nname = "a"\nkind = "slack"\nurl = "http://x"\ntimeout = 0',
     "timeout must be seconds"),
])
def test_a_bad_alerts_table_names_what_is_wrong(tmp_path, monkeypatch, table, message):
    monkeypatch.delenv("MW_TEST_UNSET_SECRET", raising=False)
    path = tmp_path / "modelward.toml"
    path.write_text(table + "\n")
    with pytest.raises(ConfigError) as exc:
        load(Settings(config_path=path))
    assert message in exc.value.message


def test_routing_by_prefix_and_least_severity():
    from modelward.alerts.config import Channel

    ch = Channel("c", "slack", "http://x", codes=("MW1", "MW205"), min_severity="error")
    assert ch.routes("MW105", "error") and ch.routes("MW205", "error")
    assert not ch.routes("MW105", "warning") and not ch.routes("MW206", "error")


def test_no_channels_no_work(ledger, tmp_path):
    path = tmp_path / "modelward.toml"
    path.write_text("[modelward]\n")
    settings = Settings(config_path=path)
    stray_decisions(ledger)
    summary = run(ledger, settings)
    assert (summary.queued, summary.delivered) == (0, 0)
    with ledger.store.read() as conn:
        assert ledger_alerts.recent(conn) == []


