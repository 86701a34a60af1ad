"""`modelward closure capture|show|reproduce` through the real CLI: exact output, exit codes."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from modelward import digest as dg
from modelward.cli.app import app
from modelward.cli.closure_render import _hardware
from modelward.ledger import closures
from modelward.timefmt import iso

from .closure_fixtures import DATA, PARAMS, make_repo

runner = CliRunner()
pytestmark = pytest.mark.slow
TRAIN_ARGS = ["--", sys.executable, "train.py", "data/train.csv", "params.json",
              "out/weights.npy"]
CAPTURE = ["closure", "capture", "--name", "toy", "--input", "data/train.csv", "--params",
           "params.json", "--seed", "7", "--env", "MW_TEST_MODE", "--output", "out/weights.npy"]


def invoke(args, *more):
    return runner.invoke(app, [*args, *more], catch_exceptions=False)


def test_capture_show_and_reproduce(cli_env, tmp_path, monkeypatch):
    led, args = cli_env
    monkeypatch.setenv("MW_TEST_MODE", "abc")
    repo = make_repo(tmp_path)
    monkeypatch.chdir(repo)
    result = invoke(args, *CAPTURE, *TRAIN_ARGS)
    assert result.exit_code == 0, result.output
    with led.store.read() as conn:
        [row] = closures.list_closures(conn)
    record = closures.load_record(led.store, row.digest)
    model = row.output_digest
    # the training's own output streams to stdout; modelward's summary goes to stderr
    assert result.stdout == record["output_tail"] + "\n"
    assert result.stderr == f"closure {row.digest} (complete)\nmodel toy {model} (registered)\n"

    shown = invoke(args, "closure", "show", model)
    assert shown.exit_code == 0
    code, env, hw = record["code"], record["environment"], record["hardware"]
    seconds = (record["finished_at"] - record["started_at"]) / 1e6
    data = dg.of_bytes(DATA.encode())
    size = (repo / "out" / "weights.npy").stat().st_size
    lock = dg.of_bytes(b"numpy\n")
    assert shown.stdout == f"""\
closure   {row.digest}
name      toy (model)
status    complete
output    {model}  out/weights.npy (file, {size:,} bytes)
command   {sys.executable} train.py data/train.csv params.json out/weights.npy
cwd       .
ran       {iso(record['started_at'])} -> {iso(record['finished_at'])} ({seconds:.1f}s), exit 0
code      {repo.resolve()} @ {code['commit']} (main)
          uncommitted patch {code['diff']} ({code['diff_bytes']:,} bytes; untracked: helper.py)
python    {env['python']} CPython {env['platform']}, {len(env['distributions'])} distributions ({sys.executable})
lock      requirements.txt {lock}
env       MW_TEST_MODE=abc
hardware  {_hardware(hw)}
input     {data}  dataset train.csv  data/train.csv  present
params    params.json {dg.of_bytes(PARAMS.encode())} ({len(PARAMS)} bytes)
seeds     7
retained  every part
gaps      none
output tail (1 lines):
  | {record['output_tail']}
"""
    assert shown.stdout == invoke(args, "closure", "show", row.digest).stdout
    as_json = orjson.loads(invoke(args, "closure", "show", model, "--json").stdout)
    assert as_json["record"] == record and as_json["closure"]["status"] == "complete"
    assert as_json["closures_of_artifact"] == 1
    assert {p["what"]: p["status"] for p in as_json["retained"]} == {
        "input": "present", "record": "present", "part": "present"}

    work = tmp_path / "rebuild"
    rebuilt = invoke(args, "closure", "reproduce", model, "--workdir", str(work))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout == f"""\
verdict   identical
closure   {row.digest} (toy)
recorded  {model}
rebuilt   {model}
workdir   {work}
code      {code['commit']} from {repo.resolve()}, patch applied ({code['diff_bytes']:,} bytes)
env       system: new venv over the host's packages; 0 installed, 0 skipped
exit      0
differences: none
"""
    # progress and the re-run's output go to stderr
    assert rebuilt.stderr.startswith(f"checking out {code['commit'][:12]} from {repo.resolve()}\n")
    assert rebuilt.stderr.endswith(record["output_tail"] + "\n")

    blob = led.store.blobs.path_of(data)
    blob.write_bytes(blob.read_bytes().replace(b"2,1,0", b"2,1,9"))
    diverged = invoke(args, "closure", "reproduce", model, "--workdir", str(tmp_path / "r2"),
                      "--json")
    assert diverged.exit_code == 1
    report = orjson.loads(diverged.stdout)
    assert report["verdict"] == "diverged" and report["new_digest"] != model
    assert [d["what"] for d in report["differences"]] == ["input", "output"]


def test_capture_json_and_a_failing_command(cli_env, tmp_path, monkeypatch):
    led, args = cli_env
    repo = make_repo(tmp_path)
    monkeypatch.chdir(repo)
    ok = invoke(args, *CAPTURE, "--json", *TRAIN_ARGS)
    assert ok.exit_code == 0
    body = orjson.loads(ok.stdout)  # the training output went to stderr
    assert ok.stderr.startswith("trained 25 steps")
    assert body["closure"]["status"] == "complete" and body["artifact_created"] is True
    assert body["artifact"]["meta"] == {"closure": body["closure"]["digest"], "trained": True}
    assert body["registered_inputs"] == [dg.of_bytes(DATA.encode())]

    (repo / "boom.py").write_text("print('out of memory')\nraise SystemExit(5)\n")
    failed = invoke(args, "closure", "capture", "--name", "boom", "--output", "x.bin", "--",
                    sys.executable, "boom.py")
    assert failed.exit_code == 5  # the command's exit code passes through
    assert failed.stdout == "out of memory\n"
    [line, gap] = failed.stderr.splitlines()
    assert line.startswith("closure sha256:") and line.endswith(" (failed)")
    assert gap == "  gap: command: exited with code 5"
    shown = invoke(args, "closure", "show", line.split()[1]).stdout.splitlines()
    assert shown[1:4] == ["name      boom (model)", "status    failed (exit 5)",
                          "output    - (nothing registered)"]
    assert shown[-3:] == ["gaps      command: exited with code 5", "output tail (1 lines):",
                          "  | out of memory"]


def test_exit_codes_through_the_real_entry_point(cli_env, tmp_path):
    _led, args = cli_env
    repo = make_repo(tmp_path)
    entry = [sys.executable, "-c", "from modelward.cli.app import main; main()", *args]

    def run(*more):
        return subprocess.run([*entry, *more], cwd=repo, capture_output=True, text=True)

    died = run("closure", "capture", "--name", "x", "--output", "x.bin", "--", sys.executable,
               "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert died.returncode == 128 + 15
    bad = run("closure", "capture", "--name", "x", "--input", "data/nope.csv", "--output",
              "x.bin", "--", sys.executable, "-c", "pass")
    assert bad.returncode == 2
    assert bad.stderr == "error: --input: data/nope.csv does not exist\n"
    empty = run("closure", "capture", "--name", "x", "--output", "x.bin", "--", sys.executable,
                "-c", "pass")
    assert empty.returncode == 2
    digest = empty.stderr.split()[1]
    assert dg.is_digest(digest) and empty.stderr == (
        f"closure {digest} (incomplete)\n"
        "  gap: output: x.bin does not exist after the command\n"
        f"error: --output: the command succeeded but x.bin was not written; closure {digest} "
        "is recorded as incomplete and nothing was registered\n")
    missing = run("closure", "show", dg.of_bytes(b"none"))
    assert missing.returncode == 2 and missing.stderr == (
        f"error: no training closure is recorded for {dg.of_bytes(b'none')}\n"
        "hint: give a closure digest or the digest of an artifact trained with "
        "`modelward closure capture`\n")
    lonely = run("closure", "reproduce", dg.of_bytes(b"none"), "--workdir", "w", "--runner",
                 "m:f")
    assert lonely.returncode == 2
    assert lonely.stderr == "error: --eval: --runner, --prompt and --scorer go with --eval\n"
