"""``modelward eval run|show|list`` on SQLite (file) and PostgreSQL: exact output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import modelward
from modelward.cli.app import app
from modelward.ledger import evals as ledger_evals
from modelward.timefmt import iso
from tests.conftest import database_url

from .test_harness import build


@pytest.fixture(params=["sqlite-file", "postgres"])
def db(request, tmp_path):
    url = database_url(request.param, tmp_path, request)
    home = str(tmp_path / "home")
    led = modelward.open(home, database_url=url)
    env = build(led.store, tmp_path)
    yield SimpleNamespace(store=led.store, tmp=tmp_path, env=env,
                          args=["--home", home, "--database-url", url])
    led.close()


def mw(db, *args):
    return CliRunner().invoke(app, [*db.args, *args])


def mw_process(db, *args):
    return subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           *db.args, *args], cwd=db.tmp, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


RUN = ["eval", "run", "--evalset", "qa.jsonl", "--prompt", "prompt/support", "--model",
       "chat/v1", "--runner", "tests.evals.harness.test_harness:answer"]


def _stored(db, run_id):
    with db.store.read() as conn:
        return ledger_evals.get_run(conn, run_id)


def test_eval_run_prints_the_run_and_its_failures(db):
    result = mw(db, *RUN, "--scorer", "exact", "--scorer", "contains")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.split("\n", 1)[0].split()[-1]
    run, e = _stored(db, run_id), db.env
    assert result.stdout == f"""run       {run_id}
status    completed  (task)
evalset   {e.evalset_digest}  (qa.jsonl)
prompt    prompt/support -> {e.p1}
model     chat/v1 -> {e.hosted}
runner    tests.evals.harness.test_harness:answer
scorers   exact, contains
harness   modelward 0.1.0
started   {iso(run.started_at)}
finished  {iso(run.finished_at)}  ({run.summary['seconds']:g}s)
items     3  passed 2 (66.7%)  errors 0
scorer       mean    pass
exact       0.667   66.7%
contains    0.667   66.7%
failures (1 of 3):
  #2 planet  FAIL  exact=0  contains=0  {_latency(db, run_id, 2)}ms
      output: 'Saturn'
"""


def _latency(db, run_id, index):
    with db.store.read() as conn:
        return f"{ledger_evals.results(conn, run_id)[index].latency_ms:g}"


def test_eval_run_json_holds_every_item(db):
    result = mw(db, *RUN, "--json", "--limit", "2")
    data = json.loads(result.stdout)
    assert (data["status"], data["n_items"], data["prompt_digest"]) == ("completed", 2, db.env.p1)
    assert [(i["item_id"], i["output_text"], i["passed"]) for i in data["items"]] == [
        ("add", "4", True), ("capital", "Paris", True)]
    assert data["items"][0]["rendered_text"] == "Q: 1+1?\nA: 2\nQ: What is 2+2?\nA:"


def test_eval_show_and_list(db):
    ran = mw(db, *RUN)
    run_id = ran.stdout.split("\n", 1)[0].split()[-1]
    run = _stored(db, run_id)
    shown = mw(db, "eval", "show", run_id)
    assert shown.stdout == ran.stdout  # `eval run` prints what `eval show` prints
    assert shown.stdout.endswith("failures (1 of 3):\n  #2 planet  FAIL  exact=0  "
                                 f"{_latency(db, run_id, 2)}ms\n      output: 'Saturn'\n")
    every = mw(db, "eval", "show", run_id, "--items").stdout
    assert every.split("items (3):\n")[1] == "".join(
        f"  #{i} {item}  {verdict}  exact={score}  {_latency(db, run_id, i)}ms\n"
        f"      output: '{out}'\n"
        for i, (item, verdict, score, out) in enumerate([
            ("add", "pass", 1, "4"), ("capital", "pass", 1, "Paris"),
            ("planet", "FAIL", 0, "Saturn")]))
    as_json = json.loads(mw(db, "eval", "show", run_id, "--json").stdout)
    assert as_json["id"] == run_id and "items" not in as_json
    assert len(json.loads(mw(db, "eval", "show", run_id, "--json", "--items").stdout)["items"]) == 3
    assert mw(db, "eval", "list").stdout == (
        f"{run_id}  completed  {iso(run.started_at)}  prompt prompt/support -> "
        f"{db.env.p1[:19]}…  model chat/v1 -> {db.env.hosted[:19]}…  n=3  pass 66.7%\n")
    assert [r["id"] for r in json.loads(mw(db, "eval", "list", "--json").stdout)] == [run_id]


def test_eval_list_when_empty(db):
    assert mw(db, "eval", "list").stdout == "no eval runs\n"


def test_exit_codes(db):
    (db.tmp / "qa_runner.py").write_text(
        "def answer(prompt, *, model, item):\n    return 'Paris'\n"
        "def crash(prompt, *, model, item):\n    raise ValueError('no GPU')\n")
    ok = mw_process(db, *RUN[:-1], "qa_runner:answer")
    assert ok.returncode == 0 and ok.stderr == ""  # piped: no progress bar
    assert ok.stdout.startswith("run       ")
    failed = mw_process(db, *RUN[:-1], "qa_runner:crash")
    assert failed.returncode == 1
    assert "error     every item failed; the first: qa_runner:crash raised ValueError: no GPU\n" \
        in failed.stdout
    bad = mw_process(db, *RUN[:-1], "qa_runner:answer", "--scorer", "bleu")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == ("error: --scorer: unknown scorer 'bleu'\nhint: built-in: exact, "
                          "contains, regex, numeric[:TOL], json_field:PATH; or MODULE:FUNC for "
                          "your own\n")
    missing = mw_process(db, "eval", "show", "nope")
    assert missing.returncode == 2
    assert missing.stderr == ("error: no eval run 'nope'\n"
                              "hint: list runs with `modelward eval list`\n")
    alias = mw_process(db, *RUN[:5], "prompt/ghost", *RUN[6:-1], "qa_runner:answer")
    assert alias.returncode == 2 and alias.stderr.startswith("error: no alias named 'prompt/ghost'")


def test_a_progress_bar_on_a_terminal_and_none_with_json(db):
    import pty
    import threading

    (db.tmp / "qa_runner.py").write_text("def answer(prompt, *, model, item):\n    return '4'\n")
    args = [*RUN[:-1], "qa_runner:answer"]

    def on_a_terminal(*extra) -> tuple[str, str]:
        master, replica = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from modelward.cli.app import main; main()", *db.args,
             *args, *extra], cwd=db.tmp, stdout=subprocess.PIPE, stderr=replica,
            env={**os.environ, "TERM": "xterm"})
        os.close(replica)
        seen = bytearray()

        def drain():  # read while it runs: a full pty buffer would block the child
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                seen.extend(data)

        reader = threading.Thread(target=drain)
        reader.start()
        stdout, _ = proc.communicate(timeout=120)
        reader.join(10)
        os.close(master)
        return stdout.decode(), seen.decode("utf-8", "replace")

    stdout, terminal = on_a_terminal()
    assert "3/3" in terminal and "eval " in terminal  # the bar, on stderr
    assert stdout.startswith("run       ") and "3/3" not in stdout
    stdout, terminal = on_a_terminal("--json")
    assert terminal == "" and json.loads(stdout)["n_items"] == 3


def test_every_eval_command_and_option_is_documented():
    from pathlib import Path

    import typer

    text = (Path(__file__).resolve().parents[3] / "docs" / "evals.md").read_text()
    group = typer.main.get_command(app).get_command(None, "eval")
    assert sorted(group.commands) == ["list", "run", "show", "watch"]
    for name, command in group.commands.items():
        assert f"modelward eval {name}" in text, name
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in text or f"{opt} " in text, (name, opt)
