"""`modelward curate`: feedback judged by a policy becomes a dataset with lineage and an
exclusion report, on every backend."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.digest import of_bytes
from modelward.errors import ValidationError
from modelward.evals.curation.curate import curate
from modelward.evals.curation.policy import BUILTIN_DIR, load_policy, parse_policy
from modelward.ledger import artifacts
from modelward.ledger import feedback as ledger_feedback
from tests.evals.mix import HOUR, MIN, T0, fid, record
from tests.evals.mix import feedback_scenario as scenario

REASONS = [("no_correction", 2), ("author_kind:employee", 1), ("decision_text_erased", 1),
           ("duplicate", 1), ("intent:style", 1), ("intent:unhelpful", 1),
           ("no_decision_text", 1), ("surface:internal", 1), ("surface:staging", 1)]


def test_curate_writes_the_admitted_feedback_with_lineage_and_reports_the_rest(ledger, tmp_path):
    d = scenario(ledger.store)
    policy = load_policy("sft-default")
    res = curate(ledger.store, policy, tmp_path / "out")
    assert (res.tally.considered, res.tally.admitted) == (12, 2)
    assert res.tally.reasons() == REASONS
    assert res.tally.examples["no_correction"] == [fid(7), fid(12)]
    lines = (tmp_path / "out" / "dataset.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x) for x in lines] == [
        {"id": fid(1), "decision_id": d[0], "input": "question zero", "output": "answer 0",
         "target": "Zero is 0.", "intent": "incorrect", "rating": -1.0,
         "segments": {"tier": "pro"}},
        {"id": fid(2), "decision_id": d[1], "input": "question one", "output": "answer 1",
         "target": "I can't share that.", "intent": "unsafe", "rating": None,
         "segments": {"tier": "pro"}}]
    raw_policy = (BUILTIN_DIR / "sft-default.toml").read_bytes()
    assert policy.digest == of_bytes(raw_policy)
    assert res.dataset == of_bytes((tmp_path / "out" / "dataset.jsonl").read_bytes())
    with ledger.store.read() as conn:
        ds = artifacts.get(conn, res.dataset)
        pol = artifacts.get(conn, policy.digest)
        linked = ledger_feedback.dataset_feedback_ids(conn, res.dataset)
    assert (ds.kind, ds.name, ds.parents) == ("dataset", "sft-default",
                                              [(policy.digest, "policy")])
    assert ds.meta == {"policy_digest": policy.digest, "policy_name": "sft-default",
                       "since": None, "until": None, "feedback": 2, "excluded": dict(REASONS)}
    assert (pol.kind, pol.name) == ("policy", "sft-default")
    assert ledger.store.blobs.get(policy.digest) == raw_policy
    assert linked == [fid(1), fid(2)]
    assert res.to_dict()["reasons"][0] == {"reason": "no_correction", "label": "no correction",
                                           "count": 2, "examples": [fid(7), fid(12)]}


def test_curating_the_same_feedback_again_gives_the_same_dataset(ledger, tmp_path):
    scenario(ledger.store)
    policy = load_policy("sft-default")
    first = curate(ledger.store, policy, tmp_path / "a")
    again = curate(ledger.store, policy, tmp_path / "b", name="ignored-when-known")
    assert (first.created, again.created, again.dataset) == (True, False, first.dataset)
    assert not list((tmp_path / "b").glob(".*.tmp"))


def test_since_and_until_bound_the_feedback_considered(ledger, tmp_path):
    scenario(ledger.store)
    res = curate(ledger.store, load_policy("sft-default"), tmp_path / "o",
                 since=T0 + HOUR + 2 * MIN, until=T0 + HOUR + 8 * MIN, name="sft-march")
    # feedback 2..7: only 2 is admitted
    assert (res.tally.considered, res.tally.admitted) == (6, 1)
    with ledger.store.read() as conn:
        ds = artifacts.get(conn, res.dataset)
    assert (ds.name, ds.meta["since"], ds.meta["until"]) == (
        "sft-march", "2026-03-01T13:02:00Z", "2026-03-01T13:08:00Z")


def test_a_custom_policy_can_rate_dedupe_exclude_authors_and_want_comments(ledger, tmp_path):
    d = record(ledger.store, [dict(at=T0 + i, input_text=t) for i, t in
                              enumerate(["Same", "same ", "other", "fourth", "fifth"])])
    prod = dict(intent="other", surface="production", author_kind="customer")
    events = [dict(decision_id=d[0], rating=5, comment="great answer", correction="A", **prod),
              dict(decision_id=d[1], rating=4, comment="great answer", correction="B", **prod),
              dict(decision_id=d[2], rating=1, comment="bad answer!!", **prod),
              dict(decision_id=d[3], comment="fine answer", author="qa-bot", **prod),
              dict(decision_id=d[4], rating=5, comment="ok", **prod)]
    with ledger.store.write() as conn:
        ledger_feedback.add(conn, [ledger_feedback.normalize(dict(e, id=fid(n), at=T0 + n))
                                   for n, e in enumerate(events, start=1)])
    policy_file = tmp_path / "prefs.toml"
    policy_file.write_text('intents = ["other"]\nrating_min = 3\nrating_max = 5\n'
                           'dedupe = "input+correction"\nmin_comment_chars = 5\n'
                           'exclude_authors = ["qa-bot"]\n')
    policy = load_policy(policy_file)
    assert (policy.name, policy.surfaces) == ("prefs", ("production", "staging", "internal"))
    res = curate(ledger.store, policy, tmp_path / "o")
    # "Same"/"same " differ in correction, so both stay under input+correction dedupe
    assert res.tally.admitted == 2
    assert res.tally.reasons() == [("comment_too_short", 1), ("excluded_author", 1),
                                   ("rating_out_of_range", 1)]
    policy_file.write_text('intents = ["other"]\ndedupe = "input"\n')
    res = curate(ledger.store, load_policy(policy_file), None, dry_run=True)
    assert res.tally.reasons() == [("duplicate", 1)] and res.dataset is None


def test_a_dry_run_writes_and_registers_nothing(ledger, tmp_path):
    scenario(ledger.store)
    res = curate(ledger.store, load_policy("sft-default"), tmp_path / "o", dry_run=True)
    assert (res.tally.admitted, res.dataset, res.path) == (2, None, None)
    assert not (tmp_path / "o").exists()
    with ledger.store.read() as conn:
        assert artifacts.list_artifacts(conn) == []


def test_a_policy_that_admits_nothing_writes_nothing(ledger, tmp_path):
    scenario(ledger.store)
    policy = parse_policy(b'intents = ["other"]\n', source="strict.toml", default_name="strict")
    with pytest.raises(ValidationError) as exc:
        curate(ledger.store, policy, tmp_path / "o")
    assert exc.value.message == ("policy strict admitted none of 12 feedback events "
                                 "(intent incorrect 8, intent style 1, intent test 1); "
                                 "no dataset was written")
    assert list((tmp_path / "o").iterdir()) == []
    with ledger.store.read() as conn:
        assert artifacts.list_artifacts(conn) == []


# --- the command ---------------------------------------------------------------------------

@pytest.fixture
def db(cli_ledger):
    return cli_ledger


def test_curate_command_prints_the_exclusion_report(db):
    scenario(db.store)
    out = db.tmp / "sft"
    run = CliRunner().invoke(app, [*db.args, "curate", "--out", str(out)])
    assert run.exit_code == 0, run.output
    digest = of_bytes((out / "dataset.jsonl").read_bytes())
    policy = of_bytes((BUILTIN_DIR / "sft-default.toml").read_bytes())
    assert run.stdout == (
        f"policy sft-default ({policy}) admitted 2 of 12 feedback events\n"
        f"dataset {digest} written to {out / 'dataset.jsonl'}\n"
        "excluded 10:\n"
        "  2  no correction\n"
        "  1  employee author\n"
        "  1  decision text erased\n"
        "  1  duplicate input\n"
        "  1  intent style\n"
        "  1  intent unhelpful\n"
        "  1  no decision text stored\n"
        "  1  surface internal\n"
        "  1  surface staging\n")
    run = CliRunner().invoke(app, [*db.args, "curate", "--policy", "sft-default", "--dry-run",
                                   "--json", "--since", "2026-03-01T13:06:00Z"])
    assert run.exit_code == 0, run.output
    report = orjson.loads(run.stdout)
    # feedback 6..12; the "Question  ZERO" one is no duplicate without feedback 1 in the set
    assert {k: report[k] for k in ("dataset", "considered", "admitted", "excluded", "since")} == {
        "dataset": None, "considered": 7, "admitted": 1, "excluded": 6,
        "since": "2026-03-01T13:06:00Z"}
    assert report["policy"] == {"name": "sft-default", "digest": policy,
                                "source": "builtin:sft-default"}


def test_curate_command_refuses_a_bad_policy_with_exit_2(db):
    bad = db.tmp / "p.toml"
    bad.write_text('intents = ["incorrect", "rude"]\n')
    proc = subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           *db.args, "curate", "--policy", str(bad), "--out", "o"],
                          cwd=db.tmp, capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: intents: 'rude' is not one of incorrect, unsafe, unhelpful, style, test, "
        f"other, unknown (policy {bad})\nhint: see docs/feedback.md for the policy format\n")
    run = CliRunner().invoke(app, [*db.args, "curate"])
    assert isinstance(run.exception, ValidationError)
    assert run.exception.message == "--out: name the directory to write the dataset to"
