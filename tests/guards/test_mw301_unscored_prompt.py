"""MW301 unscored-prompt."""

from __future__ import annotations

import pytest

from modelward.errors import ConfigError
from modelward.evals.harness.run import EvalSpec, Harness
from modelward.guards import run_guard
from modelward.ledger import evals as ledger_evals
from modelward.timefmt import iso

from .builders import DAY, HOUR, MIN, NOW, T0, move, put, record

PROD = "prompt/support@production"


def scored(store, prompt, model, at, *, prompt_alias=PROD, model_alias="chat/v1",
           status="completed", kind="task") -> str:
    """An eval run that scored (prompt, model), finished at ``at``."""
    with store.write() as conn:
        run_id = ledger_evals.start_run(
            conn, evalset_digest="sha256:" + "e" * 64, prompt_alias=prompt_alias,
            prompt_digest=prompt, model_alias=model_alias, model_digest=model,
            runner="tests:runner", harness_version="modelward 0.1.0", scorers=["exact"],
            kind=kind, at=at - 5 * MIN)
        if status != "running":
            ledger_evals.finish_run(conn, run_id, status=status, n_items=10,
                                    summary={"n": 10}, at=at)
    return run_id


@pytest.fixture
def story(ledger):
    """The prompt moved v37 -> v38 at 15:00; the eval worker scored v37 at 12:10 only."""
    s = ledger.store
    d = {"p37": put(s, "prompt", b"You are a support agent. v37", "support", "37"),
         "p38": put(s, "prompt", b"You are a support agent. v38", "support", "38"),
         "v3": put(s, "model", b"weights-v3", "chat", "v3")}
    move(s, PROD, d["p37"], T0)
    move(s, "chat/v1", d["v3"], T0)
    d["run37"] = scored(s, d["p37"], d["v3"], T0 + 10 * MIN)
    move(s, PROD, d["p38"], T0 + 3 * HOUR)
    d["ids"] = record(s, [dict(at=T0 + i * 10 * MIN + 7_000_000, alias="chat/v1", process="web-1",
                               model_digest=d["v3"],
                               prompt_digest=d["p37"] if i < 18 else d["p38"])
                          for i in range(54)])
    return d


def test_MW301_fires_when_production_ran_v38_while_the_eval_scored_v37(story, findings):
    [f] = findings("MW301")
    p37, p38, v3 = story["p37"], story["p38"], story["v3"]
    latest = {"run": story["run37"], "finished_at": "2026-03-01T12:10:00Z", "prompt_alias": PROD,
              "prompt_digest": p37, "model_alias": "chat/v1", "model_digest": v3}
    assert (f.code, f.severity, f.subject) == ("MW301", "warning", PROD)
    assert f.evidence == {
        "prompt_digest": p38, "model_digest": v3, "decisions": 36,
        "first_seen": "2026-03-01T15:00:07Z", "last_seen": "2026-03-01T20:50:07Z",
        "first_decision": story["ids"][18], "prompt_aliases": [PROD],
        "model_aliases": ["chat/v1"], "latest_prompt_eval": latest, "latest_model_eval": latest,
        "unfinished_runs": [], "window_start": iso(NOW - 30 * DAY)}
    assert f.message == (
        f"production used prompt support@38 ({p38[:19]}…) with model chat@v3 ({v3[:19]}…) in "
        "36 decisions since 2026-03-01T15:00:07Z (last 2026-03-01T20:50:07Z), and no completed "
        f"eval run scored that pair; the latest eval of {PROD} (run {story['run37']}, finished "
        f"2026-03-01T12:10:00Z) scored support@37 ({p37[:19]}…) with chat@v3 ({v3[:19]}…)")
    assert f.fix.startswith("run `modelward eval run`")
    assert f.fingerprint == findings("MW301", window="60d")[0].fingerprint  # counts may grow


def test_MW301_clean_once_an_eval_scored_the_pair_production_uses(ledger, story, findings):
    scored(ledger.store, story["p38"], story["v3"], T0 + 3 * HOUR + 20 * MIN)
    assert findings("MW301") == []


def test_MW301_only_completed_task_runs_of_that_very_pair_count(ledger, story, findings):
    s, p38, v3 = ledger.store, story["p38"], story["v3"]
    v4 = put(s, "model", b"weights-v4", "chat", "v4")
    failed = scored(s, p38, v3, T0 + 4 * HOUR, status="failed")
    running = scored(s, p38, v3, T0 + 4 * HOUR, status="running")
    scored(s, p38, v3, T0 + 4 * HOUR, kind="safety")
    other = scored(s, p38, v4, T0 + 5 * HOUR, model_alias="chat/v2")  # another model
    [f] = findings("MW301")
    assert {r["run"] for r in f.evidence["unfinished_runs"]} == {failed, running}
    assert (f"; 2 eval runs of that pair did not complete (failed, running; the latest, run "
            f"{max(failed, running)}, started 2026-03-01T15:55:00Z); the latest eval of"
            ) in f.message
    assert f.evidence["model_digest"] == v3
    assert f.evidence["latest_prompt_eval"]["run"] == other  # the alias's latest, on v4
    assert f.evidence["latest_model_eval"]["run"] == story["run37"]  # v3's latest, on v37
    assert f.message.endswith(
        f"the latest eval of {PROD} (run {other}, finished 2026-03-01T17:00:00Z) scored "
        f"support@38 ({p38[:19]}…) with chat@v4 ({v4[:19]}…); the latest eval of chat/v1 "
        f"(run {story['run37']}, finished 2026-03-01T12:10:00Z) scored support@37 "
        f"({story['p37'][:19]}…) with chat@v3 ({v3[:19]}…)")


def test_MW301_says_when_the_only_eval_of_the_pair_failed(ledger, story, findings):
    s, p38, v3 = ledger.store, story["p38"], story["v3"]
    with s.write() as conn:
        run_id = ledger_evals.start_run(
            conn, evalset_digest="sha256:" + "e" * 64, prompt_alias=PROD, prompt_digest=p38,
            model_alias="chat/v1", model_digest=v3, runner="tests:runner",
            harness_version="modelward 0.1.0", scorers=["exact"], kind="task",
            at=T0 + 3 * HOUR + 10 * MIN)
        ledger_evals.finish_run(conn, run_id, status="failed", n_items=0, summary={},
                                error="runner timed out after 600s", at=T0 + 3 * HOUR + 20 * MIN)
    [f] = findings("MW301")
    assert (f"no completed eval run scored that pair; the only eval run of that pair (run "
            f"{run_id}, started 2026-03-01T15:10:00Z) failed: runner timed out after 600s; the "
            f"latest eval of {PROD}") in f.message
    assert f.evidence["unfinished_runs"] == [
        {"run": run_id, "status": "failed", "started_at": "2026-03-01T15:10:00Z"}]


def test_MW301_window_since_and_its_configuration(story, findings):
    assert findings("MW301", window="1d") == []  # the last v38 decision is 39h before NOW
    assert [f.evidence["decisions"] for f in findings("MW301", window="2d")] == [36]
    late = findings("MW301", since=T0 + 8 * HOUR)  # --since narrows the default window
    assert [(f.evidence["decisions"], f.evidence["window_start"]) for f in late] == [
        (6, "2026-03-01T20:00:00Z")]
    with pytest.raises(ConfigError, match="window"):
        findings("MW301", window="soon")


def test_MW301_decisions_without_a_model_or_with_an_unknown_prompt(ledger, story, findings):
    s = ledger.store
    p39 = put(s, "prompt", b"You are a support agent. v39", "support", "39")
    ghost = "sha256:" + "9" * 64  # not registered: MW101's finding, not this one's
    record(s, [dict(at=T0 + 7 * HOUR, prompt_digest=story["p37"], process="eval-1"),
               dict(at=T0 + 7 * HOUR, prompt_digest=p39, process="eval-1"),
               dict(at=T0 + 7 * HOUR, prompt_digest=ghost, model_digest=story["v3"])])
    found = {(f.evidence["prompt_digest"], f.evidence["model_digest"]): f
             for f in findings("MW301")}
    assert set(found) == {(story["p38"], story["v3"]), (p39, None)}  # v37 was scored
    f = found[(p39, None)]
    assert f.subject == p39 and f.evidence["prompt_aliases"] == []
    assert f.message == (
        f"production used prompt support@39 ({p39[:19]}…) with no model digest in 1 decision "
        "since 2026-03-01T19:00:00Z (last 2026-03-01T19:00:00Z), and no completed eval run "
        "scored that prompt; no alias names this prompt and no eval run scored it")


def test_MW301_fires_on_the_fleet_until_the_eval_worker_scores_each_move(ledger, fleet,
                                                                        findings):
    s, p37, p38, v3, v4 = (ledger.store, fleet["p37"], fleet["p38"], fleet["v3"], fleet["v4"])
    pairs = {(p37, v3), (p37, v4), (p38, v4), (p38, v3), (p37, None), (p38, None)}
    assert {(f.evidence["prompt_digest"], f.evidence["model_digest"])
            for f in findings("MW301")} == pairs
    assert {f.message.rsplit("; ", 1)[1] for f in findings("MW301")} == {
        f"no eval run has scored {PROD} at all"}
    # an eval worker that re-resolves before every cycle scores every combination
    for prompt, model, at in ((p37, v3, T0 + 10 * MIN), (p37, v4, T0 + 2 * HOUR + 10 * MIN),
                              (p38, v4, T0 + 3 * HOUR + 10 * MIN),
                              (p38, v3, T0 + 5 * HOUR + 10 * MIN)):
        scored(s, prompt, model, at)
    assert findings("MW301") == []


def test_MW301_clean_after_the_harness_scores_what_production_now_runs(ledger, tmp_path):
    """End to end: the real harness scores v37, production moves to v38 and records
    through the SDK, the guard fires; the next eval run resolves v38 and it is clean."""
    s = ledger.store
    p37 = put(s, "prompt", b"Q: {{ q }} (v37)\nA:", "support", "37")
    p38 = put(s, "prompt", b"Q: {{ q }} (v38)\nA:", "support", "38")
    v3 = put(s, "model", b"weights-v3", "chat", "v3")
    move(s, PROD, p37, T0)
    move(s, "chat/v1", v3, T0)
    (tmp_path / "qa.jsonl").write_text('{"id": "1", "input": {"q": "2+2?"}, "expected": "4"}\n')
    worker = Harness(s, EvalSpec(evalset=str(tmp_path / "qa.jsonl"), prompt=PROD,
                                 model="chat/v1", runner="tests.evals.harness.test_harness:answer"))
    first = worker.run()
    move(s, PROD, p38, T0 + HOUR)
    for _ in range(3):
        ledger.record(uses=[ledger.resolve("chat/v1"), ledger.resolve(PROD)], output_text="4")
    ledger.flush()
    [f] = run_guard(s, ledger.settings, "MW301")
    assert (f.evidence["prompt_digest"], f.evidence["decisions"]) == (p38, 3)
    assert f.evidence["latest_prompt_eval"]["run"] == first.id
    assert f.evidence["latest_prompt_eval"]["prompt_digest"] == p37
    assert worker.run().prompt_digest == p38
    assert run_guard(s, ledger.settings, "MW301") == []
