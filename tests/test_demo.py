"""`make demo`: the Acme support scenario builds, every planted incident fires through the
real `modelward check`, nothing else does, and the audit of a first-month decision names the
digest chat/v1 pointed to then.

The demo lives in demo/ beside src/ (it is not part of the installed package), so the repo
root is put on sys.path here. The ledger is built once per module (about 3 s) into a tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo import build, report  # noqa: E402
from demo.catalogue import COVERED, EPISODES  # noqa: E402
from demo.incidents import ROLLBACK_AFTER, STALE_FOR, STALE_POD  # noqa: E402
from demo.scenario import MARKER  # noqa: E402
from demo.world import DAY, MINUTE, SPAN_DAYS  # noqa: E402

from modelward.ledger import aliases, artifacts, chain  # noqa: E402
from modelward.ledger.engine import Store  # noqa: E402
from modelward.settings import Settings  # noqa: E402
from modelward.timefmt import parse_time  # noqa: E402

from . import demo_install  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("demo") / "demo-ledger")


@pytest.fixture(scope="module")
def findings(built):
    return report.check_findings(built.path)


@pytest.fixture
def demo_store(built):
    s = Store(Settings({"home": str(built.path),
                        "database_url": f"sqlite:///{built.path / 'ledger.db'}",
                        "blob_url": str(built.path / "blobs")}))
    yield s
    s.dispose()


def _one(findings, code):
    hits = [f for f in findings if f["code"] == code]
    assert len(hits) == 1, hits
    return hits[0]


def test_exactly_the_planted_findings(built, findings):
    """Each incident fires and the clean stretches stay silent: the exact set of (code,
    subject), over every guard the scenario covers."""
    d = built.digests
    got = sorted((f["code"], f["subject"]) for f in findings if f["code"].startswith(COVERED))
    liked = f"support-evals-liked@2024.2 ({d['evalset-liked'][:19]}…)"
    assert got == sorted([
        ("MW102", d["chat-v1.1"]), ("MW104", "openai:gpt-4o-mini"), ("MW105", "chat/v1"),
        ("MW201", "router/v1"), ("MW201", d["support-router-v2"]), ("MW202", "router/v1"),
        ("MW202", "prompt/support@production"), ("MW203", "router/v1"),
        ("MW206", "prompt/support@production"),
        ("MW204", d["ticket-tagger-v3"]), ("MW301", "prompt/support@production"),
        ("MW303", liked), ("MW303", liked),
        ("MW304", f"sft-thumbs-down@2024-11 ({d['dataset-debug-clicks'][:19]}…)"),
        ("MW205", d["sft-chatty"]), ("MW302", "fewshot/billing-pool-v2.jsonl"),
        ("MW402", "refund-flow-canary"), ("MW402", "refund-flow-canary"),
        ("MW403", "refund-flow-canary"), ("MW403", "refund-flow-canary"),
        ("MW405", "refund-flow-canary"), ("MW404", "search-ranking"),
        ("MW501", "embed/hosted"), ("MW502", "kb/search")])
    rec = report.reconcile(built.expected, findings)
    assert rec.ok, (rec.missing, rec.unexpected)
    assert len(rec.matched) == len(built.expected) == 24
    assert COVERED == ("MW0", "MW1", "MW201", "MW202", "MW203", "MW204", "MW205", "MW206",
                       "MW301", "MW302", "MW303", "MW304", "MW401", "MW402", "MW403", "MW404",
                       "MW405", "MW501", "MW502")
    assert all(not f["code"].startswith(COVERED) for f in rec.uncovered)
    assert len(rec.matched) + len(rec.uncovered) == len(findings)


def test_stuck_eval_worker_scored_v3_while_production_ran_v4(built, findings):
    d = built.digests
    f = next(f for f in findings if f["code"] == "MW301")
    ev = f["evidence"]
    assert (ev["prompt_digest"], ev["model_digest"]) == (d["prompt-v4"], d["chat-v1.3.1"])
    assert ev["latest_prompt_eval"]["prompt_digest"] == d["prompt-v3"]
    assert parse_time(ev["latest_prompt_eval"]["finished_at"]) > parse_time(ev["first_seen"])
    stale = next(f for f in findings if f["code"] == "MW202"
                 and f["subject"] == "prompt/support@production")["evidence"]
    assert stale["scored"] == [d["prompt-v3"], d["chat-v1.3.1"]]
    # the control: v3 and the summariser's pair were scored, so only v4 is unscored
    assert [f["subject"] for f in findings if f["code"] == "MW301"] == [
        "prompt/support@production"]
    # v4 skipped its promotion: shipped by a recorded break-glass, which MW206 reports
    moved = _one(findings, "MW206")["evidence"]
    assert (moved["kind"], moved["digest"], moved["problems"]) == (
        "break-glass", d["prompt-v4"], ["break-glass"])
    assert moved["reviewers"] == ["maya.chen@acme.example", "platform-oncall@acme.example"]


def test_feedback_incidents(built, findings):
    d = built.digests
    mw303 = {f["evidence"].get("source") or f["evidence"]["segment"]: f["evidence"]
             for f in findings if f["code"] == "MW303"}
    assert set(mw303) == {"thumbs_up", "tier=enterprise"}
    assert mw303["thumbs_up"]["source_share"] == 1.0
    assert mw303["tier=enterprise"]["traffic_share"] > 0.15
    assert mw303["tier=enterprise"]["eval_share"] < 0.05
    assert all(f["evidence"]["evalset"] != d["evalset-support"] for f in findings
               if f["code"] == "MW303")  # the stratified rebuild is silent
    mw304 = _one(findings, "MW304")["evidence"]
    assert mw304["dataset"] == d["dataset-debug-clicks"] != d["dataset-curated"]
    assert mw304["excluded"] == mw304["feedback"] > 50
    assert mw304["policy_name"] == "sft-default"


def test_lifecycle_incidents(built, findings):
    d = built.digests
    promo = _one(findings, "MW203")
    assert "without opening the evidence" in promo["message"]
    assert "override" in promo["message"] and "23:43:00Z" in promo["evidence"]["at"]
    stale = next(f for f in findings if f["code"] == "MW202" and f["subject"] == "router/v1")
    assert {p["gate"] for p in stale["evidence"]["problems"]} == {"fresh", "evalset"}
    owners = sorted(f["evidence"]["problem"] for f in findings if f["code"] == "MW201")
    assert owners == ["artifact-owner-inactive", "owner-inactive"]
    closure = _one(findings, "MW204")["evidence"]
    assert closure["problem"] == "no-closure"
    # the clean promotion and the captured closure raise nothing
    subjects_ = {f["subject"] for f in findings}
    assert "escalation/v1" not in subjects_ and d["intent-classifier"] not in subjects_


def test_replay_names_the_deleted_checkpoint_and_replays_a_retained_decision(built):
    """Incident 7: the v1.1 decision cannot be re-run (its weights are gone); the decision
    recorded this week with the deterministic runner replays identical."""
    from demo.replay import RUNNER

    v11 = built.digests["chat-v1.1"]
    lost = report.run(built.path, "replay", built.notes["replay_unretained"], "--runner", RUNNER,
                      "--json")
    assert lost.returncode == 1, lost.stderr
    got = json.loads(lost.stdout)
    assert got["verdict"] == "not-retained" and got["output"] is None
    assert [(m["what"], m["digest"], m["status"]) for m in got["missing"]] == [
        ("model", v11, "missing")]
    assert "acme-support-7b@v1.1" in got["missing"][0]["message"]
    kept = report.run(built.path, "replay", built.notes["replay_retained"], "--runner", RUNNER,
                      "--json")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    got = json.loads(kept.stdout)
    assert (got["verdict"], got["compared_by"], got["missing"]) == ("identical", "text", [])
    assert got["output"] == got["recorded_output"]
    assert got["output"].endswith("[acme-support-7b@v1.3.1]")


def test_safety_and_contamination_incidents(built, findings):
    d = built.digests
    lost = _one(findings, "MW205")["evidence"]
    assert (lost["digest"], lost["base"], lost["problem"]) == (
        d["sft-chatty"], d["assistant-base-v1"], "regressed")
    assert lost["aliases"] == ["assistant/chatty"]
    assert any("harmful refusal" in f for f in lost["failures"])
    assert d["sft-careful"] not in {f["subject"] for f in findings}  # kept refusing
    leak = _one(findings, "MW302")["evidence"]
    assert (leak["evalset"], leak["items"], leak["contaminated"]) == (
        "evals/billing-evals.jsonl", 12, 3)
    assert sorted(m["item"] for m in leak["matches"]) == ["bill-00", "bill-04", "bill-10"]
    assert all(f["subject"] != "fewshot/billing-pool-v1.jsonl" for f in findings)


def test_rollout_and_retrieval_incidents(built, findings, demo_store):
    mw402 = {f["evidence"]["covariate"]: f["evidence"] for f in findings if f["code"] == "MW402"}
    assert set(mw402) == {"sessions_30d", "spend_90d"}
    assert all(e["experiment"] == "refund-flow-canary" and e["n_arm"] == 500
               and e["smd"] > 1 for e in mw402.values())
    tests = sorted(f["evidence"]["test"] for f in findings if f["code"] == "MW403")
    assert tests == ["id-mod-10", "id-mod-100"]
    assert not [f for f in findings if f["code"] == "MW401"]  # exactly 95/5: who, not how many
    # the flag's arms are not the salt's: every id % 100 < 5 user the salt puts in control,
    # and every other user it puts in treatment
    from modelward.rollout.checks import experiment_of

    with demo_store.read() as conn:
        exp = experiment_of(conn, "refund-flow-canary")
    flag = {f"u-{i}": "treatment" if i % 100 < 5 else "control" for i in range(1, 10_001)}
    wrong = [u for u, a in flag.items() if exp.assign(u) != a]
    arms = _one(findings, "MW405")["evidence"]
    assert (arms["mismatched_exposures"], arms["mismatched_subjects"], arms["exposures"]) == (
        len(wrong), len(wrong), 10_000)
    assert arms["examples"] == wrong[:5]
    assert all(f["subject"] != "answer-style" for f in findings)  # the balanced control
    shift = _one(findings, "MW404")
    assert shift["subject"] == "search-ranking" and "fingerprint_epoch" in shift["message"]
    rotated = _one(findings, "MW501")
    assert rotated["subject"] == "embed/hosted" and "epoch 1 -> 2" in rotated["message"]
    gate = _one(findings, "MW502")
    assert gate["subject"] == "kb/search" and gate["evidence"]["kind"] == "pass-rate-shift"
    # the planted shift, 35% to about 22%; the check window's start moves with the date
    # while the change happened at a fixed time, so the exact figure moves by a point or so
    ev = gate["evidence"]
    relative = (ev["pass_rate_after"] - ev["pass_rate_before"]) / ev["pass_rate_before"]
    assert -0.45 < relative < -0.3
    assert f"{relative:+.0%} relative" in gate["message"]
    assert all(f["subject"] not in ("docs/search", "embed/local") for f in findings)


def test_stale_pod_is_named_with_the_digest_it_kept(built, findings):
    f = _one(findings, "MW105")
    ev = f["evidence"]
    moved = parse_time(ev["moved_at"])
    assert (ev["process"], ev["stale_digest"], ev["moved_to"]) == (
        STALE_POD, built.digests["chat-v1.1"], built.digests["chat-v1.2"])
    assert moved + 30 * MINUTE < parse_time(ev["first_seen"])
    assert parse_time(ev["last_seen"]) < moved + STALE_FOR
    assert ev["decisions"] >= 5 and ev["grace"] == "30m"


def test_vendor_swap_names_both_model_ids(built, findings):
    ev = _one(findings, "MW104")["evidence"]
    assert (ev["digest"], ev["old"], ev["new"]) == (
        built.digests["gpt-4o-mini"], "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2025-01-31")
    assert ev["decisions_old"] > 1000 and ev["decisions_new"] > 1000 and ev["changes"] == 1


def test_deleted_checkpoint_only(built, findings, demo_store):
    """v1.1's own blobs are gone; the tokenizer it shared and every other payload remain."""
    f = _one(findings, "MW102")
    ev = f["evidence"]
    assert ev["payload"] == "missing" and ev["decisions"] > 1000
    # dated by the decisions that name v1.1 (its first month of service to the stale pod's
    # last answer), not by the start of the retention window
    assert f"the first at {ev['first_seen']} and the last at {ev['last_seen']}" in f["message"]
    assert ev["window_start"] < ev["first_seen"] and ev["window_start"] not in f["message"]
    with demo_store.read() as conn:
        [to_v11] = [e for e in aliases.history(conn, "chat/v1")
                    if e.digest == built.digests["chat-v1.1"]]
    assert to_v11.at <= parse_time(ev["first_seen"]) < to_v11.at + DAY
    with demo_store.read() as conn:
        status = {a.digest: artifacts.payload_status(demo_store, a)
                  for a in artifacts.list_artifacts(conn)}
        v12 = artifacts.get(conn, built.digests["chat-v1.2"])
    assert status.pop(built.digests["chat-v1.1"]) == "missing"
    hosted = {built.digests[k] for k in ("gpt-4o-mini", "claude-haiku", "embed/hosted",
                                         "embed/local")}
    assert {d for d, s in status.items() if s == "vendor"} == hosted
    assert {s for d, s in status.items() if d not in hosted} == {"present"}
    shared = artifacts.blob_digests(demo_store, v12)  # manifest, config, tokenizer, weights
    assert len(shared) == 4 and all(demo_store.blobs.has(b) for b in shared)


def test_rollback_and_rotations_are_in_the_alias_history(built, demo_store):
    with demo_store.read() as conn:
        chat = aliases.history(conn, "chat/v1")
        prompt = aliases.history(conn, "prompt/support@production")
        report_ = chain.verify(conn)
    assert [e.kind for e in chat] == ["create", "move", "move", "move", "rollback", "move"]
    d = built.digests
    assert [e.digest for e in chat] == [d["chat-v1.0"], d["chat-v1.1"], d["chat-v1.2"],
                                        d["chat-v1.3"], d["chat-v1.2"], d["chat-v1.3.1"]]
    assert chat[4].at - chat[3].at == ROLLBACK_AFTER
    assert len({e.digest for e in chat}) == 5
    assert len(prompt) == 4  # v1 -> v2 -> v3 -> v4 (stuck-eval-worker)
    assert built.now - SPAN_DAYS * DAY - 7 * DAY < chat[0].at < built.now - SPAN_DAYS * DAY
    assert report_.ok and report_.decisions == built.decisions


def test_traffic_is_realistic(built, demo_store):
    assert 50_000 < built.decisions < 100_000
    # how long the build took is a measurement (docs/demo.md), not a test: a wall-clock
    # bound fails on a busy machine without anything being wrong
    assert built.blocks > 5_000  # one block per hour of traffic, as a batching recorder seals
    assert set(built.by_alias) == {"chat/v1", "summary/v1", "triage/v1"}
    with demo_store.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT segments, subject, process, gate_threshold, gate_candidates, gate_passed "
            "FROM decisions WHERE alias = 'chat/v1' LIMIT 3000").all()
        texts = conn.exec_driver_sql("SELECT count(*) FROM decision_payloads").scalar()
    tiers = {re.search(r'"tier":"(\w+)"', r[0]).group(1) for r in rows}
    topics = {re.search(r'"topic":"(\w+)"', r[0]).group(1) for r in rows}
    assert tiers == {"free", "pro", "enterprise"}
    assert topics == {"billing", "bug", "howto", "account"}
    assert all(re.fullmatch(r"u_[0-9a-f]{12}", r[1]) for r in rows)
    assert all(re.fullmatch(r"pod-chat-[0-9a-f]{4}:1", r[2]) for r in rows)
    assert all(r[3] == 0.4 and 0 <= r[5] <= r[4] for r in rows)
    assert 0 < texts < built.decisions / 5


def test_audit_of_a_first_month_decision_names_the_digest_then(built):
    audit = report.audit_report(built.path, built.audit_decision_id)
    at = parse_time(audit["decision"]["at"])
    start = built.now - SPAN_DAYS * DAY
    assert start <= at < start + 31 * DAY
    assert audit["alias"]["name"] == "chat/v1"
    assert audit["alias"]["digest"] == built.digests["chat-v1.0"] == built.audit_alias_digest
    assert audit["alias"]["verdict"] == "agrees"
    model = next(x for x in audit["digests"] if x["field"] == "model")
    assert model["digest"] == built.digests["chat-v1.0"]
    assert model["artifact"]["version"] == "v1.0"
    assert audit["chain"]["verifies"] is True and audit["ok"] is True


def test_registry_incidents_plant_and_controls_do_not(built):
    incidents = {e.name for e in EPISODES if e.kind == "incident"}
    controls = {e.name for e in EPISODES if e.kind == "control"}
    assert incidents >= {"stale-pod", "silent-vendor-swap", "deleted-checkpoint",
                         "stuck-eval-worker", "thumbs-up-evalset", "debug-clicks-sft",
                         "rubber-stamp-promotion", "untraceable-fine-tune", "bug-report-replay",
                         "refusals-lost", "fewshot-pool-leak", "id-modulo-canary",
                         "pinned-gate", "silent-embedder-rotation"}
    assert controls >= {"bad-release-rollback", "prompt-rollouts", "evaluated-rollouts",
                        "curated-sft", "team-roster", "clean-promotion", "captured-closure",
                        "retained-replay", "refusals-kept", "disjoint-pool",
                        "balanced-experiment", "recalibrated-gate", "stable-embedder"}
    # every incident plants a finding but the replay, whose evidence is `modelward replay`
    assert {e.episode for e in built.expected} == incidents - {"bug-report-replay"}


def test_same_seed_and_clock_build_the_same_ledger(built, tmp_path):
    again = build(tmp_path / "again", now=built.now)
    assert again.digests == built.digests
    assert again.audit_decision_id == built.audit_decision_id

    def head(path):
        s = Store(Settings({"home": str(path), "database_url": f"sqlite:///{path / 'ledger.db'}"}))
        try:
            with s.read() as conn:
                # a block of records is stamped with the clock when it is sealed; a block of
                # decisions with its decisions' times, which the demo's clock sets
                return [tuple(r) for r in conn.exec_driver_sql(
                    "SELECT number, count, records, CASE WHEN records > 0 THEN NULL "
                    "ELSE first_at END FROM chain_blocks ORDER BY number")], \
                    conn.exec_driver_sql("SELECT id FROM decisions ORDER BY id").scalars().all()
        finally:
            s.dispose()
    assert head(again.path) == head(built.path)


def test_rebuild_replaces_a_demo_ledger_and_refuses_anything_else(tmp_path):
    from demo.scenario import _prepare

    ours = tmp_path / "ours"
    _prepare(ours)
    (ours / "ledger.db").write_text("old")
    _prepare(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="refusing to delete"):
        _prepare(theirs)
    assert (theirs / "thesis.tex").read_text() == "precious"


def test_make_demo_script_end_to_end(tmp_path):
    """demo/build.py as `make demo` runs it: the story, the check, the audit, exit 0 —
    importing only what `make demo` installs (the extras on its install line), and ending
    with the command that puts the CLI on the reader's PATH."""
    [install] = demo_install.pip_install_lines(demo_install.dry_run("demo", tmp_path))
    env = demo_install.env_with_only(demo_install.extras_of(install), tmp_path)
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != venv_bin)  # as make runs it: not activated
    proc = subprocess.run([sys.executable, str(ROOT / "demo" / "build.py"),
                           str(tmp_path / "demo-ledger")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    explore = out[out.index("=== Explore it yourself"):]
    assert explore.splitlines()[1] == (f"  . {sys.prefix}/bin/activate   # puts modelward on "
                                       "PATH in this shell (or: make shell)")
    assert "No module named" not in proc.stderr
    for heading in ("Building the Acme support ledger", "What the alias history says happened",
                    "What nobody noticed at the time", "Clean stretches", "$ modelward check",
                    "Did every planted incident fire", "An auditor asks"):
        assert f"=== {heading}" in out
    assert re.search(r"^  ok +MW105 chat/v1 process=pod-chat-7f9c:1 ", out, re.M)
    assert re.search(r"^  ok +MW104 openai:gpt-4o-mini ", out, re.M)
    assert re.search(r"^  ok +MW102 sha256:", out, re.M)
    assert not re.search(r"^  (MISSING|UNPLANTED) ", out, re.M)
    # the second audit: the stale pod's answer disagrees with the alias, on a deleted payload
    stale_audit = out[out.index("=== ...and one that pod-chat-7f9c:1 served"):]
    assert "DISAGREES with the alias" in stale_audit and "payload MISSING" in stale_audit
    for pattern in (r"^  ok +MW301 prompt/support@production ", r"^  ok +MW303 support-evals-liked",
                    r"^  ok +MW304 sft-thumbs-down", r"^  ok +MW203 router/v1 ",
                    r"^  ok +MW204 sha256:", r"^  ok +MW205 sha256:",
                    r"^  ok +MW302 fewshot/billing-pool-v2.jsonl ",
                    r"^  ok +MW402 refund-flow-canary ", r"^  ok +MW403 refund-flow-canary ",
                    r"^  ok +MW405 refund-flow-canary ", r"^  ok +MW404 search-ranking ", r"^  ok +MW501 embed/hosted ",
                    r"^  ok +MW502 kb/search "):
        assert re.search(pattern, out, re.M), pattern
    replay = out[out.index("=== A bug report quotes an answer v1.1 gave"):]
    assert "verdict   NOT RETAINED" in replay and "acme-support-7b@v1.1" in replay
    assert "verdict   IDENTICAL" in replay[replay.index("=== ...and one from this week"):]
    check = out[out.index("=== $ modelward check"):out.index("=== Did every planted")]
    for line in ("  MW102 unretained-artifact  sha256:", "  MW104 vendor-substitution  "
                 "openai:gpt-4o-mini\n", "  MW105 stale-fleet  chat/v1\n"):
        assert line in check
    assert re.search(r"^24 findings: 4 errors, 20 warnings", check, re.M)


def test_explore_it_yourself_commands_reproduce_the_demo_exactly(built, findings, tmp_path):
    """The printed commands, run as a reader would (from another directory, with only
    MODELWARD_HOME exported), read the ledger's own modelward.toml and report exactly the
    demo's findings; no guard is skipped for lack of configuration."""
    from demo.build import explore_commands

    commands = [c for c, _comment in explore_commands(built, built.path)]
    env = {k: v for k, v in report.cli_env(built.path).items() if k != "MODELWARD_HOME"}
    assert commands[0] == f"export MODELWARD_HOME={built.path}"
    env["MODELWARD_HOME"] = str(built.path)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    for command in commands[1:]:
        args = command.split()[1:]
        proc = subprocess.run([*report.modelward_command(), *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode in (0, 1), (command, proc.stderr)
        if args == ["check"]:
            text = proc.stdout
            assert text.startswith(f"config: {built.path / 'modelward.toml'}\n")
            assert "skipped for lack of configuration" not in text
    proc = subprocess.run([*report.modelward_command(), "check", "--format", "json",
                           "--exit-zero"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    again = json.loads(proc.stdout)
    assert again["config"] == str(built.path / "modelward.toml") and again["skipped"] == []
    assert sorted((f["code"], f["subject"], f["fingerprint"]) for f in again["findings"]) == \
        sorted((f["code"], f["subject"], f["fingerprint"]) for f in findings)
    sarif = json.loads((cwd / "demo.sarif").read_text())
    assert len(sarif["runs"][0]["results"]) == len(findings)


def _yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", markdown, re.M | re.S)


def test_the_github_workflow_in_the_docs_runs_on_the_demo_ledger(built, findings):
    """docs/check.md's workflow, its `modelward` steps run as the job would (the ledger
    from the job's env, the checkout as working directory): the SARIF step exits 0 and
    writes a file GitHub accepts, whose results open on the checkout's modelward.toml; the
    annotation step fails the job with one annotation per finding."""
    import yaml

    from .sarif_checks import github_upload_problems, schema_errors

    [text] = [b for b in _yaml_blocks((ROOT / "docs" / "check.md").read_text())
              if "upload-sarif" in b]
    workflow = yaml.safe_load(text)
    job = workflow["jobs"]["check"]
    assert workflow["permissions"] == {"contents": "read", "security-events": "write"}
    steps = job["steps"]
    commands = [step["run"] for step in steps if str(step.get("run", "")).startswith("modelward ")]
    assert len(commands) == 2
    [upload] = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    # the job's ledger is the demo ledger: its secrets stand for these
    assert set(job["env"]) == {"MODELWARD_DATABASE_URL", "MODELWARD_BLOB_URL"}
    env = {k: v for k, v in report.cli_env(built.path).items()}
    env.update(MODELWARD_DATABASE_URL=f"sqlite:///{built.path / 'ledger.db'}",
               MODELWARD_BLOB_URL=str(built.path / "blobs"))
    checkout = built.path.parent  # holds demo-ledger/modelward.toml, found through the home
    runs = [subprocess.run([*report.modelward_command(), *command.split()[1:]], cwd=checkout,
                           env=env, capture_output=True, text=True, timeout=300)
            for command in commands]
    sarif_step, annotate_step = runs
    assert sarif_step.returncode == 0, sarif_step.stderr
    assert sarif_step.stdout.startswith(f"{len(findings)} findings: ")
    doc = json.loads((checkout / upload["with"]["sarif_file"]).read_text())
    assert schema_errors(doc) == [] and github_upload_problems(doc) == []
    results = doc["runs"][0]["results"]
    assert len(results) == len(findings)
    config_lines = (built.path / "modelward.toml").read_text().splitlines()
    for r in results:
        physical = r["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "demo-ledger/modelward.toml"
        line = config_lines[physical["region"]["startLine"] - 1]
        assert line == ("[check.MW402]" if r["ruleId"] == "MW402" else config_lines[0])
    assert annotate_step.returncode == 1, annotate_step.stderr
    annotations = [line for line in annotate_step.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == len(findings)
    assert annotations[0].startswith("::error title=MW102 unretained-artifact::")


def test_the_pre_commit_hook_runs_on_the_demo_ledger(built, findings):
    """.pre-commit-hooks.yaml's hook: its entry run as pre-commit runs it (no file names)
    on the demo ledger fails on the demo's findings; it triggers on modelward.toml only;
    the local hook of docs/check.md runs the same command."""
    import yaml

    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["language"], hook["pass_filenames"]) == (
        "modelward-check", "python", False)
    files = re.compile(hook["files"])
    assert [bool(files.search(p)) for p in ("modelward.toml", "ml/modelward.toml",
                                            "notmodelward.toml", "modelward.toml.bak")] == [
        True, True, False, False]
    argv = hook["entry"].split() + hook.get("args", [])
    assert argv[0] == "modelward"
    proc = subprocess.run([*report.modelward_command(), *argv[1:]], cwd=built.path.parent,
                          env=report.cli_env(built.path), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    errors = sum(f["severity"] == "error" for f in findings)
    assert re.search(rf"^{len(findings)} findings: {errors} errors, "
                     rf"{len(findings) - errors} warnings", proc.stdout, re.M)
    [local] = [yaml.safe_load(b) for b in _yaml_blocks((ROOT / "docs" / "check.md").read_text())
               if "repo: local" in b]
    [documented] = local["repos"][0]["hooks"]
    assert (documented["id"], documented["entry"], documented["files"],
            documented["pass_filenames"]) == (hook["id"], hook["entry"], hook["files"], False)
