"""The watch runs what changed: the guards new blocks concern (``guards.incremental``), MW103
from the block this process verified last, the findings of guards it did not run left as
they were; ``serve --watch-min-gap`` (setting ``watch_min_gap``)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import sqlalchemy as sa

from modelward.alerts.watch import watch
from modelward.guards import registry
from modelward.guards.history import listing, run_and_record
from modelward.guards.incremental import READS, Incremental, concerned
from modelward.ledger import artifacts, chain
from modelward.ledger import findings as ledger_findings
from modelward.ledger.schema import chain_blocks, decisions
from modelward.settings import Settings

from ..web.browser import _env, free_port
from ..web.browser import modelward as cli
from .test_alerts import GHOST, stray_decisions

DECISION_GUARDS = {"MW101", "MW102", "MW103", "MW104", "MW105", "MW301", "MW502"}
META = {c.code for c in registry.CODES if c.meta and c.status == "active"}


def test_every_active_guard_says_what_it_reads():
    active = {c.code for c in registry.CODES if c.status == "active" and not c.meta}
    assert set(READS) == active


def test_new_blocks_pick_the_guards_that_read_them():
    assert concerned({"decisions"}) == DECISION_GUARDS | META
    assert {"MW105", "MW201", "MW206", "MW203"} <= concerned({"alias_events"})
    assert "MW101" not in concerned({"eval_runs"}) and "MW301" in concerned({"eval_runs"})
    # the traffic-mix guard: eval writes and the backstop, not every decision block
    assert "MW303" in concerned({"eval_runs"}) and "MW303" not in concerned({"decisions"})
    assert concerned({"fingerprints"}) >= {"MW501", "MW502", "MW404", "MW103"}
    assert concerned({"finding_acks"}) == {"MW103"} | META  # acks change no guard's input
    everything = {c.code for c in registry.CODES if c.status == "active"}
    assert concerned({"a_table_added_later"}) == everything  # unknown: run them all
    assert concerned(set()) == (everything - set(READS)) | META


def test_a_guard_that_did_not_run_keeps_its_findings(ledger):
    """A run of other guards neither resolves nor refreshes an open finding; the run still
    lists it (carried over from the run before), so the findings page shows it."""
    settings = ledger.settings
    stray_decisions(ledger)  # MW101 fires
    run_and_record(ledger.store, settings, source="watch")
    with ledger.store.read() as conn:
        [before] = ledger_findings.by_state(conn, "open", guard="MW101")
    report, second = run_and_record(ledger.store, settings, source="watch",
                                    only=concerned({"eval_runs"}))
    assert "MW101" not in report.guards_run and "MW301" in report.guards_run
    with ledger.store.read() as conn:
        [still] = ledger_findings.by_state(conn, "open", guard="MW101")
        assert still["runs"] == before["runs"]  # not seen again by a run that did not look
        assert before["key"] in ledger_findings.run_keys(conn, second)  # listed still
    shown = listing(ledger.store)
    assert shown.run.id == second and any(g.code == "MW101" for g in shown.groups)
    assert not any(i.new for g in shown.groups for i in g.items if g.code == "MW101")


def test_a_partial_run_resolves_only_its_own_guards(ledger):
    settings = ledger.settings
    stray_decisions(ledger)  # MW101 fires
    run_and_record(ledger.store, settings, source="watch")
    with ledger.store.read() as conn:
        assert ledger_findings.by_state(conn, "open", guard="MW101")
    artifacts.register_bytes(ledger.store, "model", GHOST, name="ghost")  # its cause goes
    run_and_record(ledger.store, settings, source="watch", only=concerned({"eval_runs"}))
    with ledger.store.read() as conn:
        assert ledger_findings.by_state(conn, "open", guard="MW101")  # MW101 did not run
    run_and_record(ledger.store, settings, source="watch", only=concerned({"artifacts"}))
    with ledger.store.read() as conn:
        assert not ledger_findings.by_state(conn, "open", guard="MW101")
        assert ledger_findings.by_state(conn, "resolved", guard="MW101")


def _mw103(ledger, state):
    report, _run = run_and_record(ledger.store, ledger.settings, source="watch",
                                  only={"MW103"}, incremental=state)
    return [f for f in report.findings if f.code == "MW103"]


def test_mw103_in_watch_verifies_only_the_new_blocks(ledger):
    """The watch remembers the block and root it verified; the next run verifies the
    blocks after it (and a tampered new block is caught), a rewritten root of the
    remembered block is caught, and an edit below it waits for the scheduled backstop,
    which verifies everything again."""
    stray_decisions(ledger, n=3)
    state = Incremental()
    assert _mw103(ledger, state) == []
    point = state.verified
    assert point is not None and point.block > 0
    for i in range(5):
        ledger.record(alias="chat/v1", model_digest="sha256:" + "ef" * 32, subject=f"n{i}")
    ledger.flush()
    assert _mw103(ledger, state) == [] and state.verified.block > point.block
    with ledger.store.read() as conn:
        chain_report = chain.verify(conn, since=point)
    assert chain_report.blocks == state.verified.block - point.block  # only the new ones

    # a decision edited in a block below the remembered one: caught by the backstop
    with ledger.store.read() as conn:
        old = conn.execute(sa.select(decisions.c.id, decisions.c.block)
                           .order_by(decisions.c.block).limit(1)).first()
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.id == old.id)
                     .values(process="forged"))
    assert _mw103(ledger, state) == []  # as from a checkpoint: below it is vouched for
    state.reset()  # what the scheduled backstop does
    [f] = _mw103(ledger, state)
    assert f.subject == f"block {old.block}"
    assert state.verified is None  # a failed verification is not remembered



def test_mw103_catches_a_new_tampered_block_and_a_rewritten_root(ledger):
    stray_decisions(ledger, n=3)
    state = Incremental()
    assert _mw103(ledger, state) == []
    remembered = state.verified.block
    for i in range(4):
        ledger.record(alias="chat/v1", model_digest="sha256:" + "ef" * 32, subject=f"m{i}")
    ledger.flush()
    with ledger.store.read() as conn:
        newest = conn.execute(sa.select(sa.func.max(decisions.c.block))).scalar()
    assert newest > remembered
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.block == newest)
                     .values(process="forged"))
    [f] = _mw103(ledger, state)
    assert f.subject == f"block {newest}"
    assert state.verified.block == remembered  # not moved past a broken block
    with ledger.store.write() as conn:
        conn.execute(chain_blocks.update().where(chain_blocks.c.number == remembered)
                     .values(root="0" * 64))
    found = _mw103(ledger, state)
    assert any(f.subject == f"block {remembered}" for f in found)


def test_the_loop_runs_what_changed_and_everything_on_schedule(ledger):
    runs, now, stop = [], [0.0], threading.Event()
    state = Incremental()
    thread = threading.Thread(target=watch, args=(ledger.store, ledger.settings), kwargs={
        "interval": 1000, "min_gap": 0, "poll": 0.02, "stop": stop, "on_run": runs.append,
        "clock": lambda: now[0], "state": state})
    thread.start()
    try:
        _until(lambda: runs)
        assert runs[0].reason == "start"
        everything = set(runs[0].guards)
        stray_decisions(ledger)  # artifacts, an alias move and decisions
        _until(lambda: any(r.reason == "new blocks" for r in runs)
               and state.head == _head(ledger))
        n = len(runs)
        for i in range(3):  # decisions only
            ledger.record(alias="chat/v1", model_digest="sha256:" + "ef" * 32, subject=f"d{i}")
        ledger.flush()
        _until(lambda: len(runs) > n and state.head == _head(ledger))
        assert set(runs[-1].guards) == (concerned({"decisions"}) & everything)
        assert state.verified is not None and state.window.folded > 0
        now[0] = 2000.0  # the backstop is due
        _until(lambda: runs[-1].reason == "schedule")
        assert set(runs[-1].guards) == everything
    finally:
        stop.set()
        thread.join(30)


def _head(ledger):
    with ledger.store.read() as conn:
        return conn.execute(sa.select(sa.func.max(chain_blocks.c.number))).scalar()


def _until(probe, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.02)


def test_watch_min_gap_setting_and_serve_option(tmp_path):
    assert Settings({}, env={"MODELWARD_WATCH_MIN_GAP": "3s"}).watch_min_gap == 3_000_000
    assert Settings({}, env={}).watch_min_gap == 10_000_000
    bad = cli(tmp_path, "serve", "--watch", "1h", "--watch-min-gap", "soon")
    assert bad.returncode == 2 and "--watch-min-gap" in bad.stderr
    assert cli(tmp_path, "init").returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelward.cli.app", "--home", str(tmp_path), "serve",
         "--port", str(port), "--watch", "1h", "--watch-min-gap", "3s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path),
        cwd=tmp_path)
    try:
        deadline, seen = time.monotonic() + 60, ""
        while "at most every 3s" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "at most every 3s" in seen and "at least every 1h" in seen, seen
    finally:
        proc.terminate()
        proc.wait(30)


def test_mw103_in_watch_catches_rows_deleted_below_the_remembered_block(ledger):
    """Below the remembered block, a deleted decision or a deleted chained record changes the
    counts the watch remembered: caught by the next trigger, as from a checkpoint."""
    stray_decisions(ledger, n=6)
    state = Incremental()
    assert _mw103(ledger, state) == []
    with ledger.store.write() as conn:
        gone = conn.execute(sa.select(decisions.c.id).limit(1)).scalar()
        conn.execute(decisions.delete().where(decisions.c.id == gone))
    remembered = state.verified
    found = _mw103(ledger, state)
    assert found and "were deleted or inserted" in found[0].message + str(found[0].evidence)
    assert state.verified == remembered  # a failed verification moves nothing


def test_mw103_in_watch_catches_a_deleted_record_below_the_remembered_block(ledger):
    from modelward.ledger.schema import alias_events

    stray_decisions(ledger, n=2)
    state = Incremental()
    assert _mw103(ledger, state) == []
    with ledger.store.write() as conn:
        conn.execute(alias_events.delete())
    found = _mw103(ledger, state)
    assert found, "a deleted alias event below the remembered block went unnoticed"


def test_a_problem_from_the_remembered_block_names_it_as_such(ledger):
    stray_decisions(ledger, n=2)
    state = Incremental()
    _mw103(ledger, state)
    with ledger.store.write() as conn:
        conn.execute(chain_blocks.update().where(chain_blocks.c.number == state.verified.block)
                     .values(root="0" * 64))
    [f] = _mw103(ledger, state)
    assert "recorded by this process's last verification" in f.message + str(f.evidence)
    assert "signed" not in str(f.evidence.get("reason", ""))
