"""``modelward replay`` on SQLite (file) and PostgreSQL: exact output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.ledger import artifacts
from modelward.timefmt import iso

from .conftest import DAY, T0, record
from .test_replay import EXPECTED, PROMPT, RUNNER

ROOT = Path(__file__).resolve().parents[2]


def build(led, tmp_path):
    store = led.store
    weights = tmp_path / "w.bin"
    weights.write_text("weights-v3")
    model = artifacts.register_path(store, "model", weights, name="chat", version="v3",
                                    at=T0).artifact.digest
    prompt = artifacts.register_bytes(store, "prompt", PROMPT, name="support", version="38",
                                      at=T0).artifact.digest
    same, other = record(store, dict(at=T0 + DAY, alias="chat/v1", model_digest=model,
                                     prompt_digest=prompt, input_text="where is my order?",
                                     output_text=EXPECTED),
                         dict(at=T0 + DAY, model_digest=model, prompt_digest=prompt,
                              input_text="where is my order?", output_text="It shipped."))
    return model, prompt, same, other


def mw(args, *more):
    return CliRunner().invoke(app, [*args, *more])


def test_replay_identical_and_different(cli_env, tmp_path):
    led, args = cli_env
    model, prompt, same, other = build(led, tmp_path)
    blob = led.store.blobs.path_of(model).resolve()
    result = mw(args, "replay", same, "--runner", RUNNER, "--no-cache")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"""decision  {same}  at {iso(T0 + DAY)}  alias chat/v1
model     model chat@v3 ({model})  present, verified (rehashed now)
          passed to the runner as {blob}
prompt    prompt support@38 ({prompt})  present, verified (rehashed now)  (template uses input)
runner    {RUNNER}
verdict   IDENTICAL: the replayed output matches the recorded output (compared by its text)
"""
    result = mw(args, "replay", other, "--runner", RUNNER, "--no-cache")
    assert result.exit_code == 1
    assert result.stdout.endswith(
        "verdict   DIFFERENT: the replayed output differs from the recorded output (compared "
        "by its text)\n--- recorded\n+++ replay\n@@ -1 +1 @@\n-It shipped.\n"
        "\\ No newline at end of file\n"
        f"+{EXPECTED}\n\\ No newline at end of file\n")


def test_replay_not_retained(cli_env, tmp_path):
    led, args = cli_env
    model, prompt, same, _other = build(led, tmp_path)
    led.store.blobs.delete(model)
    with led.store.write() as conn:
        artifacts.mark_payload_deleted(conn, model, T0 + 9 * DAY)
    result = mw(args, "replay", same, "--runner", RUNNER, "--no-cache")
    assert result.exit_code == 1
    assert result.stdout == f"""decision  {same}  at {iso(T0 + DAY)}  alias chat/v1
model     model chat@v3 ({model})  MISSING: the blob is not in the store (deleted by gc at {iso(T0 + 9 * DAY)})
prompt    prompt support@38 ({prompt})  present, verified (rehashed now)
runner    {RUNNER}
verdict   NOT RETAINED: the decision cannot be replayed
  model: model chat@v3 ({model}) is not retained: its payload was deleted by gc at {iso(T0 + 9 * DAY)}
"""
    data = json.loads(mw(args, "replay", same, "--runner", RUNNER, "--json").stdout)
    assert data["verdict"] == "not-retained"
    assert data["missing"] == [{"what": "model", "digest": model, "status": "missing",
                                "since": iso(T0 + 9 * DAY),
                                "message": f"model chat@v3 ({model}) is not retained: its "
                                           f"payload was deleted by gc at {iso(T0 + 9 * DAY)}"}]


def test_replay_exit_codes_through_a_real_process(cli_env, tmp_path):
    led, args = cli_env
    _model, _prompt, same, other = build(led, tmp_path)

    def run(*more):
        return subprocess.run([sys.executable, "-c",
                               "from modelward.cli.app import main; main()", *args, *more],
                              capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))

    assert run("replay", same, "--runner", RUNNER).returncode == 0
    assert run("replay", other, "--runner", RUNNER).returncode == 1
    bad = run("replay", "not-an-id", "--runner", RUNNER)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: DECISION_ID: not a decision id: 'not-an-id'\n")
    unknown = run("replay", "0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70", "--runner", RUNNER)
    assert unknown.returncode == 2
    assert unknown.stderr == ("error: no decision '0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70' in "
                              "the ledger\nhint: find decisions with `modelward decisions "
                              "search`\n")


def test_every_replay_option_is_documented():
    import typer

    text = (ROOT / "docs" / "replay.md").read_text()
    command = typer.main.get_command(app).get_command(None, "replay")
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"{opt}" in text.split("## Usage", 1)[1], opt
