"""``modelward eval watch``: the worker re-resolves before every cycle and re-runs when a
digest moved. Library level over every backend, and the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from modelward.evals.harness.watch import watch
from modelward.ledger import aliases
from modelward.ledger import evals as ledger_evals

from .test_harness import build, harness


@pytest.fixture
def env(ledger, tmp_path):
    return build(ledger.store, tmp_path)


def test_watch_runs_again_only_when_an_alias_moved(ledger, env):
    logs, naps = [], []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 2:  # after two cycles with the same digests, the prompt moves
            with ledger.store.write() as conn:
                aliases.set_alias(conn, "prompt/support", env.p2)

    runs = watch(harness(ledger.store, env), interval=0.25, max_runs=2,
                 log=lambda message, details: logs.append((message, details["event"])), sleep=sleep)
    assert naps == [0.25, 0.25]  # cycle 1 ran, cycle 2 found nothing moved, cycle 3 ran
    assert [r.prompt_digest for r in runs] == [env.p1, env.p2]
    assert [r.status for r in runs] == ["completed", "completed"]
    assert [event for _, event in logs] == ["run", "moved", "run"]
    assert logs[1][0] == f"prompt prompt/support moved {env.p1[:19]}… -> {env.p2[:19]}…"
    assert logs[2][0] == (
        f"run {runs[1].id} completed: prompt prompt/support={env.p2[:19]}…, model "
        f"chat/v1={env.hosted[:19]}…, evalset {env.evalset_digest[:19]}…; exact mean 0.667 "
        "pass 66.7%; n=3, errors=0")
    with ledger.store.read() as conn:
        assert [r.id for r in ledger_evals.list_runs(conn)] == [runs[1].id, runs[0].id]


def test_watch_retries_a_failed_run_and_survives_a_bad_cycle(ledger, env):
    logs = []
    h = harness(ledger.store, env, runner="tests.evals.harness.test_harness:broken")
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 1:  # the eval set file disappears for one cycle
            env.evalset.rename(env.evalset.with_suffix(".bak"))
        elif len(naps) == 2:
            env.evalset.with_suffix(".bak").rename(env.evalset)

    runs = watch(h, interval=1, max_runs=2, log=lambda m, d: logs.append(m), sleep=sleep)
    assert [r.status for r in runs] == ["failed", "failed"]  # nothing moved, but it never passed
    assert logs[1] == (f"cycle failed: --evalset: '{env.evalset}' is not a file, a registered "
                       "digest or an alias")


def _mw(tmp_path, args, **kw):
    return subprocess.Popen([sys.executable, "-c", "from modelward.cli.app import main; main()",
                             *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ), **kw)


@pytest.mark.parametrize("backend_url", ["sqlite-file", "postgres"], indirect=True)
def test_eval_watch_command_scores_the_new_prompt_after_a_move(ledger, backend_url, tmp_path):
    env = build(ledger.store, tmp_path)
    (tmp_path / "qa_runner.py").write_text(  # imported from the working directory
        "def answer(prompt, *, model, item):\n"
        "    return {'What is 2+2?': '4'}.get(item['input']['q'], 'no idea')\n")
    proc = _mw(tmp_path, ["--home", str(tmp_path / "home"), "--database-url", backend_url,
                          "eval", "watch", "--evalset", "qa.jsonl", "--prompt", "prompt/support",
                          "--model", "chat/v1", "--runner", "qa_runner:answer",
                          "--interval", "100ms", "--max-runs", "2", "--json"])
    try:
        start = json.loads(proc.stdout.readline())
        first = json.loads(proc.stdout.readline())
        assert start["event"] == "start" and first["event"] == "run"
        assert first["run"]["prompt_digest"] == env.p1
        time.sleep(0.6)  # several cycles pass with nothing moved: no new run
        with ledger.store.read() as conn:
            assert len(ledger_evals.list_runs(conn)) == 1
        with ledger.store.write() as conn:
            aliases.set_alias(conn, "prompt/support", env.p2, reason="v2 ships")
        rest, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    moved, second = [json.loads(line) for line in rest.splitlines()]
    assert moved["message"] == f"prompt prompt/support moved {env.p1[:19]}… -> {env.p2[:19]}…"
    run = second["run"]
    assert (run["prompt_alias"], run["prompt_digest"], run["status"]) == (
        "prompt/support", env.p2, "completed")
    assert run["summary"]["passed"] == 1 and run["evalset_digest"] == env.evalset_digest
    assert second["message"].startswith(f"run {run['id']} completed: prompt prompt/support=")


@pytest.mark.parametrize("backend_url", ["sqlite-file"], indirect=True)
def test_sigterm_marks_the_run_in_progress_failed(ledger, backend_url, tmp_path):
    build(ledger.store, tmp_path)
    (tmp_path / "slow_runner.py").write_text(
        "import sys, time\n"
        "def answer(prompt, *, model, item):\n"
        "    print('calling', flush=True, file=sys.stderr)\n"
        "    time.sleep(30)\n"
        "    return '4'\n")
    proc = _mw(tmp_path, ["--home", str(tmp_path / "home"), "--database-url", backend_url,
                          "eval", "watch", "--evalset", "qa.jsonl", "--prompt", "prompt/support",
                          "--model", "chat/v1", "--runner", "slow_runner:answer"])
    try:
        assert proc.stderr.readline() == "calling\n"  # the first item is in flight
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    with ledger.store.read() as conn:
        [run] = ledger_evals.list_runs(conn)
    assert (run.status, run.error, run.n_items) == ("failed", "interrupted", 0)
