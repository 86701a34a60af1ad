"""MW105 stale-fleet."""

import pytest

from modelward.errors import ConfigError

from .builders import HOUR, MIN, T0, record


def _pinned(process, alias, field, digest, hours=6):
    """A process that resolved once at start-up and never again."""
    return [dict(at=T0 + i * 10 * MIN + 1_000_000, alias=alias, process=process,
                 **{field: digest}) for i in range(hours * 6)]


def test_MW105_fires_for_a_process_that_kept_the_old_model(ledger, fleet, findings):
    ids = record(ledger.store, _pinned("worker-9", "chat/v1", "model_digest", fleet["v3"]))
    [f] = findings("MW105")
    # chat/v1: v3 -> v4 at 14:00, back to v3 at 17:00; stale from 14:30 to 17:00
    assert f.subject == "chat/v1" and f.severity == "warning"
    assert f.evidence == {
        "alias": "chat/v1", "process": "worker-9", "stale_digest": fleet["v3"],
        "field": "model_digest", "moved_to": fleet["v4"], "moved_at": "2026-03-01T14:00:00Z",
        "grace": "30m", "decisions": 15, "first_seen": "2026-03-01T14:30:01Z",
        "last_seen": "2026-03-01T16:50:01Z", "first_decision": ids[15], "last_decision": ids[29]}
    assert f.message == (
        f"worker-9 still named chat@v3 ({fleet['v3'][:19]}…) for chat/v1 in 15 decisions from "
        f"2026-03-01T14:30:01Z to 2026-03-01T16:50:01Z, after chat/v1 moved to chat@v4 "
        f"({fleet['v4'][:19]}…) at 2026-03-01T14:00:00Z (grace 30m)")


def test_MW105_judges_a_prompt_alias_by_its_prompt_digest(ledger, fleet, findings):
    record(ledger.store, _pinned("eval-2", "prompt/support@production", "prompt_digest",
                                 fleet["p37"]))
    [f] = findings("MW105")
    assert (f.evidence["process"], f.evidence["field"], f.evidence["decisions"]) == (
        "eval-2", "prompt_digest", 15)  # 15:30:01 .. 17:50:01, prompt moved at 15:00


def test_MW105_grace_is_configurable_and_checked(ledger, fleet, findings):
    record(ledger.store, _pinned("worker-9", "chat/v1", "model_digest", fleet["v3"]))
    [f] = findings("MW105", grace="2h")
    assert f.evidence["decisions"] == 6 and f.evidence["grace"] == "2h"  # 16:00:01 .. 16:50:01
    assert findings("MW105", grace="3h") == []  # the rollback at 17:00 came first
    with pytest.raises(ConfigError, match="grace"):
        findings("MW105", grace="soon")


def test_MW105_exactly_at_the_end_of_grace_is_not_stale(ledger, fleet, findings):
    record(ledger.store, [dict(at=T0 + 2 * HOUR + 30 * MIN, alias="chat/v1", process="w",
                               model_digest=fleet["v3"])])
    assert findings("MW105") == []
    record(ledger.store, [dict(at=T0 + 2 * HOUR + 30 * MIN + 1, alias="chat/v1", process="w",
                               model_digest=fleet["v3"])])
    assert [f.evidence["decisions"] for f in findings("MW105")] == [1]


def test_MW105_clean_on_a_realistic_ledger(fleet, findings):
    # processes re-resolve within 20 minutes of each move; the rollback makes v3 right again
    assert findings("MW105") == []
