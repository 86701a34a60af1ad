"""Acknowledging and snoozing findings on every backend: an acknowledged finding stays open
in the lifecycle but ``check`` counts it as suppressed and no alert announces it; when the
ack is revoked or expires the finding fails again and is announced once more; every ack is
a chained record naming who silenced what."""

from __future__ import annotations

import pytest

from modelward.errors import ConflictError, NotFoundError, ValidationError
from modelward.guards import acks
from modelward.guards.history import run_and_record
from modelward.ledger import acks as ledger_acks
from modelward.ledger import chain
from modelward.ledger import findings as ledger_findings
from modelward.timefmt import now_us

from .receiver import Receiver
from .test_alerts import GHOST_DIGEST, configure, run, stray_decisions

HOUR = 3600 * 1_000_000


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _key(ledger) -> str:
    with ledger.store.read() as conn:
        [row] = ledger_findings.by_state(conn, "all", guard="MW101")
    return row["key"]


def test_an_ack_silences_check_and_alerts_until_it_is_revoked(ledger, tmp_path, monkeypatch,
                                                             receiver):
    settings = configure(tmp_path, monkeypatch, receiver)
    stray_decisions(ledger)
    assert run(ledger, settings).delivered == 1  # opened, announced
    key = _key(ledger)
    ack = acks.acknowledge(ledger.store, key, actor="ana@example.com",
                           reason="vendor digest registered on Monday")
    assert (ack.finding_key, ack.code, ack.until) == (key, "MW101", None)

    report, _ = run_and_record(ledger.store, settings, source="check", select="MW101")
    assert report.findings == [] and report.exit_code() == 0
    [(finding, by)] = report.suppressed
    assert finding.fingerprint == key and by.to_dict()["acknowledged_by"] == "ana@example.com"
    assert report.to_dict()["summary"]["suppressed"] == 1
    with ledger.store.read() as conn:  # still open in the lifecycle, listed as acknowledged
        assert ledger_findings.by_state(conn, "open", guard="MW101") == []
        [row] = ledger_findings.by_state(conn, "acknowledged")
        assert row["runs"] == 2 and row["resolved_at"] is None
        assert acks.lifecycle_item(row)["acknowledged_by"] == "ana@example.com"
        assert chain.verify(conn).ok
    assert run(ledger, settings).queued == 0 and len(receiver.at("/hook")) == 1

    with pytest.raises(ConflictError, match="already acknowledged by ana@example.com"):
        acks.acknowledge(ledger.store, key, actor="bo@example.com", reason="again")
    revoked = acks.unacknowledge(ledger.store, key, actor="bo@example.com")
    assert (revoked.revoked_by, revoked.actor) == ("bo@example.com", "ana@example.com")
    with pytest.raises(NotFoundError):
        acks.unacknowledge(ledger.store, key, actor="bo@example.com")

    report, _ = run_and_record(ledger.store, settings, source="check", select="MW101")
    assert report.exit_code() == 1 and [f.fingerprint for f in report.findings] == [key]
    again = run(ledger, settings)  # the ack lapsed while it stayed open: announced again
    assert again.delivered == 1 and receiver.at("/hook")[-1].json()["state"] == "opened"
    assert run(ledger, settings).queued == 0  # once
    with ledger.store.read() as conn:
        assert [a.revoked_at is not None for a in ledger_acks.of_finding(conn, key)] == [True]
        assert chain.verify(conn).ok


def test_a_snooze_expires_and_the_finding_fails_again(ledger, tmp_path, monkeypatch,
                                                      receiver):
    settings = configure(tmp_path, monkeypatch, receiver)
    stray_decisions(ledger)
    t0 = now_us()
    _r, run_id = run_and_record(ledger.store, settings, source="check", select="MW101",
                                now=t0 - 3 * HOUR)
    key = _key(ledger)
    acks.acknowledge(ledger.store, key, actor="ana@example.com", reason="looking",
                     until="1h", now=t0 - 2 * HOUR)  # snoozed until an hour ago
    with ledger.store.read() as conn:
        assert ledger_acks.active(conn, t0 - 90 * 60 * 1_000_000)  # it was active then
        assert ledger_acks.active(conn, t0) == {}
        [row] = ledger_findings.by_state(conn, "open")
        assert row["ack"] is None
    report, _ = run_and_record(ledger.store, settings, source="check", select="MW101")
    assert report.exit_code() == 1 and report.suppressed == []
    delivered = run(ledger, settings)
    assert delivered.delivered == 1 and receiver.at("/hook")[-1].json()["state"] == "opened"


def test_a_resolved_then_reopened_finding_is_no_longer_covered(ledger, tmp_path,
                                                               monkeypatch, receiver):
    from modelward.ledger import artifacts

    from .test_alerts import GHOST

    settings = configure(tmp_path, monkeypatch, receiver)
    stray_decisions(ledger)
    run(ledger, settings)
    key = _key(ledger)
    acks.acknowledge(ledger.store, key, actor="ana@example.com", reason="known")
    artifacts.register_bytes(ledger.store, "model", GHOST, name="ghost")
    run(ledger, settings)  # resolved
    with pytest.raises(ConflictError, match="is resolved"):
        acks.acknowledge(ledger.store, key, actor="ana@example.com", reason="late")
    with ledger.store.read() as conn:
        [row] = ledger_findings.by_state(conn, "resolved")
        assert row["subject"] == GHOST_DIGEST and row["ack"] is None
        assert ledger_findings.by_state(conn, "acknowledged") == []


@pytest.mark.parametrize(("key", "reason", "until", "error", "match"), [
    ("0" * 16, "why", None, NotFoundError, "no finding"),
    ("NOT-A-KEY", "why", None, ValidationError, "not a finding key"),
    ("a" * 65, "why", None, ValidationError, "not a finding key"),
    (None, "  ", None, ValidationError, "reason is required"),
    (None, "x" * 501, None, ValidationError, "at most 500"),
    (None, "bell\x07", None, ValidationError, "control characters"),
    (None, "why", "yesterday", ValidationError, "until"),
    (None, "why", "2000-01-01T00:00:00Z", ValidationError, "not in the future"),
    (None, "why", "400d", ValidationError, "more than a year"),
])
def test_bad_acks_are_refused_and_nothing_is_written(ledger, tmp_path, monkeypatch, receiver,
                                                     key, reason, until, error, match):
    settings = configure(tmp_path, monkeypatch, receiver)
    stray_decisions(ledger)
    run(ledger, settings)
    real = _key(ledger)
    with pytest.raises(error, match=match):
        acks.acknowledge(ledger.store, key or real, actor="ana@example.com",
                         reason=reason, until=until)
    with ledger.store.read() as conn:
        assert ledger_acks.of_finding(conn, real) == []
