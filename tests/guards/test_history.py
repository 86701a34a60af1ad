"""Guard runs recorded in the ledger: the findings' lifecycle (opened, last seen, resolved),
"new since the previous run", the ranked and filtered listing, and the ids a finding names."""

from __future__ import annotations

import pytest

from modelward.errors import ValidationError
from modelward.guards.finding import Finding
from modelward.guards.history import Filters, listing, run_and_record
from modelward.guards.refs import facts
from modelward.ledger import findings as ledger_findings

from .builders import HOUR, NOW, T0, record
from .test_runner import settings_with


def _stale(ledger, fleet, process, n=1):
    record(ledger.store, [dict(at=T0 + 3 * HOUR + i, alias="chat/v1", process=process,
                               model_digest=fleet["v3"]) for i in range(n)])


def _run(ledger, s, **kw):
    return run_and_record(ledger.store, s, source="check", now=NOW, **kw)


def _lifecycle(ledger, key):
    with ledger.store.read() as conn:
        return ledger_findings.lifecycles(conn, [key])[key]


def test_runs_record_their_findings_and_new_since_the_previous_run(tmp_path, ledger, fleet):
    s = settings_with(tmp_path, "")
    assert listing(ledger.store).run is None  # nothing recorded yet: the page shows progress
    _stale(ledger, fleet, "worker-9", n=3)
    report, first = _run(ledger, s)
    [f] = report.findings
    shown = listing(ledger.store)
    assert shown.run.id == first and shown.previous is None and shown.run.status == "done"
    [group] = shown.groups
    [item] = group.items
    assert (group.code, group.decisions, group.aliases, item.new) == ("MW105", 3, 1, True)
    assert item.row.first_seen == T0 + 3 * HOUR and item.row.last_seen == T0 + 3 * HOUR + 2
    assert ("alias", "chat/v1") in item.refs
    assert any(k == "decision" for k, _v in item.refs)  # first/last decision, linkable

    _run(ledger, s)  # the same finding again: not new, seen twice
    [item] = listing(ledger.store).groups[0].items
    assert item.new is False and item.runs == 2
    state = _lifecycle(ledger, f.fingerprint)
    assert (state.opened_run, state.runs, state.resolved_run) == (first, 2, None)

    _stale(ledger, fleet, "worker-10")
    _, third = _run(ledger, s)
    shown = listing(ledger.store)
    assert shown.previous.id != third and shown.run.id == third
    new = {i.row.evidence["process"]: i.new for i in shown.groups[0].items}
    assert new == {"worker-9": False, "worker-10": True}
    assert shown.groups[0].items[0].row.evidence["process"] == "worker-10"  # new first
    only_new = listing(ledger.store, Filters(new=True))
    assert [i.row.evidence["process"] for i in only_new.groups[0].items] == ["worker-10"]
    assert only_new.total == 2 and only_new.shown == 1


def test_resolved_by_a_run_of_its_guard_without_it_and_opened_again(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9")
    report, first = _run(ledger, settings_with(tmp_path, ""))
    key = report.findings[0].fingerprint
    _run(ledger, settings_with(tmp_path, ""), ignore="MW105")  # MW105 did not run
    assert _lifecycle(ledger, key).resolved_run is None
    suppressed = settings_with(tmp_path, f"""
[[check.suppress]]
code = "MW105"
fingerprint = "{key}"
reason = "accepted until the nightly restart"
""")
    _, gone = _run(ledger, suppressed)
    state = _lifecycle(ledger, key)
    assert (state.resolved_run, state.resolved_at) == (gone, NOW)
    _, back = _run(ledger, settings_with(tmp_path, ""))
    state = _lifecycle(ledger, key)
    assert (state.opened_run, state.resolved_run, state.runs) == (back, None, 1)
    assert first != back


def test_a_failed_run_is_recorded_failed_and_the_listing_keeps_the_last_good_one(
        tmp_path, ledger, fleet):
    s = settings_with(tmp_path, "")
    _, good = _run(ledger, s)

    def boom(code, done, total):
        raise RuntimeError(f"stopped at {code}")

    with pytest.raises(RuntimeError):
        _run(ledger, s, progress=boom)
    with ledger.store.read() as conn:
        failed = ledger_findings.latest_run(conn, status="failed")
    assert failed.error.startswith("RuntimeError: stopped at MW")
    assert listing(ledger.store).run.id == good


def test_only_the_newest_runs_keep_their_findings_rows(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9")
    s = settings_with(tmp_path, "")
    ids = [run_and_record(ledger.store, s, source="dashboard", now=NOW, keep=2)[1]
           for _ in range(3)]
    with ledger.store.read() as conn:
        assert [r.id for r in ledger_findings.recent_runs(conn)] == ids[:0:-1]
        assert ledger_findings.run_keys(conn, ids[0]) == set()
        [key] = ledger_findings.run_keys(conn, ids[2])
        assert ledger_findings.lifecycles(conn, [key])[key].runs == 3  # the lifecycle stays


def test_filters_narrow_the_listing(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9", n=2)
    record(ledger.store, [dict(at=T0 + 5 * HOUR, alias="legacy/v0")])  # MW101, an error
    _run(ledger, settings_with(tmp_path, ""))
    everything = listing(ledger.store)
    assert [g.code for g in everything.groups] == ["MW101", "MW105"]  # errors rank first
    assert everything.counts() == {"error": 1, "warning": 1, "info": 0}

    def codes(**kw):
        return [g.code for g in listing(ledger.store, Filters.parse(**kw)).groups]

    assert codes(severity="warning") == ["MW105"]
    assert codes(guard="mw1") == ["MW101", "MW105"] and codes(guard="MW105") == ["MW105"]
    assert codes(alias="legacy/v0") == ["MW101"]
    assert codes(q="worker-9") == ["MW105"] and codes(q="stale-fleet chat/v1") == ["MW105"]
    assert codes(q="no such words") == []
    assert [g.code for g in listing(ledger.store, Filters(since=T0 + 4 * HOUR)).groups] == [
        "MW101"]


@pytest.mark.parametrize("kw, field", [
    ({"severity": "critical"}, "severity"), ({"guard": "MW1; DROP"}, "guard"),
    ({"guard": "MW١٠١"}, "guard"), ({"alias": "a" * 301}, "alias"), ({"q": "x" * 201}, "q"),
])
def test_a_bad_filter_names_its_field(kw, field):
    with pytest.raises(ValidationError) as err:
        Filters.parse(**kw)
    assert err.value.field == field


def test_facts_read_ids_and_counts_from_the_evidence_by_code():
    d1, d2 = "018f0000-0000-7000-8000-000000000001", "018f0000-0000-7000-8000-000000000002"
    f = Finding("MW104", "warning", "acme:m", "changed", evidence={
        "digest": "sha256:" + "a" * 64, "last_before": {"id": d1, "at": "2026-03-01T00:00:00Z"},
        "first_after": {"id": d2, "at": "2026-03-02T00:00:00Z"},
        "changed_at": "2026-03-02T00:00:00Z", "decisions_new": 7})
    fx = facts(f)
    assert fx.decisions == 7 and fx.aliases is None
    assert fx.refs == (("decision", d1), ("decision", d2), ("digest", "sha256:" + "a" * 64))
    assert fx.first_seen == fx.last_seen == T0 - 12 * HOUR + 24 * HOUR
    # the same key means another kind of id in another guard's evidence
    fp = facts(Finding("MW501", "warning", "embed/x", "m", evidence={"alias": "embed/x",
                                                                     "run_id": "r1"}))
    ev = facts(Finding("MW302", "error", "sha256:x", "m", evidence={"run_id": "r1"}))
    assert ("fingerprint_run", "r1") in fp.refs and ev.refs == (("eval_run", "r1"),)
    # MW103's "decisions" is every decision verified; the affected ones are decision_count
    chain = facts(Finding("MW103", "error", "block 3", "m", evidence={
        "decisions": 5000, "decision_count": 2, "decision_ids": [d1, "not-a-uuid"]}))
    assert chain.decisions == 2 and chain.refs == (("decision", d1),)


def test_a_run_left_running_by_a_crash_stops_counting_as_running(tmp_path, ledger, fleet):
    from modelward.guards.history import RUNNING_MIN, current_runs
    from modelward.timefmt import now_us

    _run(ledger, settings_with(tmp_path, ""))  # a quick run: seconds, not minutes
    started = now_us()
    with ledger.store.write() as conn:
        ledger_findings.start_run(conn, source="dashboard", started_at=started, now=NOW,
                                  since=None, guards=["MW105"])  # the server then died
    with ledger.store.read() as conn:
        latest, running = current_runs(conn, started + RUNNING_MIN // 2)
        assert running is not None and running.status == "running"
        latest, running = current_runs(conn, started + RUNNING_MIN + 1)
        assert running is None and latest.status == "done"
