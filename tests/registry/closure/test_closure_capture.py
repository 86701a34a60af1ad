"""`closure capture` as a library call: what a closure records, on every backend, with a real
git repository, a real interpreter and a real training subprocess."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from modelward import digest as dg
from modelward.errors import UnknownArtifactError, ValidationError
from modelward.ledger import artifacts, closures
from modelward.registry.closure import git as closure_git
from modelward.registry.closure.capture import TAIL_LINES, capture

from .closure_fixtures import DATA, PARAMS, git, make_repo, train_spec


def test_capture_records_everything_and_registers_the_trained_artifact(ledger, tmp_path,
                                                                        monkeypatch):
    store = ledger.store
    monkeypatch.setenv("MW_TEST_MODE", "abc")
    base = artifacts.register_bytes(store, "model", b"base weights", name="base").artifact
    repo = make_repo(tmp_path)
    streamed = []
    result = capture(store, train_spec(repo, base=base.digest, seeds=(7, 8)),
                     sink=streamed.append)
    rec, row, art = result.record, result.closure, result.artifact

    weights = repo / "out" / "weights.npy"
    assert art.digest == dg.of_file(weights) == row.output_digest == rec["output"]["digest"]
    assert art.kind == "model" and art.name == "toy" and art.meta == {
        "closure": row.digest, "trained": True}
    data = dg.of_bytes(DATA.encode())
    assert sorted(art.parents) == sorted([(data, "data"), (base.digest, "base")])
    assert result.artifact_created and [a.digest for a in result.registered_inputs] == [data]
    with store.read() as conn:
        assert artifacts.get(conn, data).kind == "dataset"
        assert closures.find(conn, row.digest) == row
    assert store.blobs.get(data) == DATA.encode()  # the input's payload is stored

    # the closure id is the digest of the canonical record kept in the blob store
    assert closures.load_record(store, row.digest) == rec
    assert row.digest == dg.of_json(rec)
    assert (row.status, row.complete, row.exit_code, row.gaps) == ("complete", True, 0, [])
    assert row.inputs == [data, base.digest] and row.base_digest == base.digest

    code = rec["code"]
    assert code["repository"] == str(repo.resolve()) and code["branch"] == "main"
    assert code["commit"] == git(repo, "rev-parse", "HEAD")
    patch = store.blobs.get(code["diff"]).decode()
    assert "-SCALE = 1.0\n+SCALE = 0.5" in patch  # the tracked edit
    assert "deleted file mode 100644" in patch and "obsolete.txt" in patch
    assert "+++ b/helper.py" in patch  # the untracked module, as a new file
    assert code["untracked"] == ["helper.py"]
    # inputs and params are restored from the blob store, ignored files are not code
    assert code["excluded"] == ["data/train.csv", "params.json"]
    assert "train.csv" not in patch and "cache.bin" not in patch
    assert row.blobs[0] == code["diff"] and code["diff_bytes"] == len(patch.encode())

    env = rec["environment"]
    assert env["python"] == platform.python_version() and env["executable"] == sys.executable
    assert env["distributions"]["numpy"]["version"] == np.__version__
    assert env["interpreter_is_command"] is True
    [lock] = env["lock_files"]
    assert lock == {"root": "repo", "path": "requirements.txt", "bytes": 6,
                    "digest": dg.of_bytes(b"numpy\n")}
    assert lock["digest"] in row.blobs
    hw = rec["hardware"]
    assert hw["cpus"] >= 1 and hw["memory_bytes"] > 0 and "gpus" in hw

    assert rec["env"] == {"MW_TEST_MODE": "abc"}
    assert rec["inputs"] == [{"digest": data, "kind": "dataset", "name": "train.csv",
                              "given": "path", "root": "repo", "path": "data/train.csv"}]
    assert rec["base"]["digest"] == base.digest and rec["base"]["root"] == "absolute"
    assert rec["params"]["content"] == PARAMS and rec["params"]["path"] == "params.json"
    assert store.blobs.get(rec["params"]["digest"]) == PARAMS.encode()
    assert rec["seeds"] == [7, 8] and rec["cwd"] == {"root": "repo", "path": "."}
    assert rec["command"][1:] == ["train.py", "data/train.csv", "params.json",
                                  "out/weights.npy"]
    assert rec["started_at"] <= rec["finished_at"] and rec["exit_code"] == 0
    assert rec["output_tail"].startswith("trained 25 steps; first weight ")
    assert b"".join(streamed).decode().strip() == rec["output_tail"]
    assert rec["output"]["bytes"] == weights.stat().st_size and not rec["output"]["is_directory"]


def test_a_failed_command_records_a_failed_closure_and_registers_nothing(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    (repo / "fail.py").write_text("import sys\nprint('diverged at step 3')\nsys.exit(3)\n")
    result = capture(store, train_spec(repo, command=[sys.executable, "fail.py"]))
    row = result.closure
    assert result.artifact is None and row.output_digest is None
    assert (row.status, row.exit_code, row.complete) == ("failed", 3, False)
    assert row.gaps == ["command: exited with code 3"]
    assert result.record["output_tail"] == "diverged at step 3"
    with store.read() as conn:
        kinds = [a.kind for a in artifacts.list_artifacts(conn)]
        assert closures.find(conn, row.digest).status == "failed"
    assert kinds == ["dataset"]  # the input was registered before the run; no model


def test_a_command_that_cannot_start_exits_127(ledger, tmp_path):
    repo = make_repo(tmp_path)
    result = capture(ledger.store, train_spec(repo, command=["no-such-trainer-xyz"]))
    assert result.closure.exit_code == 127 and result.artifact is None
    assert result.record["output_tail"].startswith("modelward: cannot run no-such-trainer-xyz")


def test_a_command_that_writes_no_output_leaves_an_incomplete_closure(ledger, tmp_path):
    repo = make_repo(tmp_path)
    result = capture(ledger.store, train_spec(repo, command=[sys.executable, "-c", "pass"]))
    assert result.artifact is None and result.closure.status == "incomplete"
    assert result.closure.gaps == ["output: out/weights.npy does not exist after the command"]


def test_bad_requests_are_refused_before_the_command_runs(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    marker = repo / "ran"
    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    gone = artifacts.register_bytes(store, "dataset", b"rows", name="gone").artifact.digest
    store.blobs.delete(gone)
    unknown = dg.of_bytes(b"never registered")
    (repo / "out").mkdir()
    (repo / "out" / "stale.npy").write_bytes(b"old")
    cases = [
        (dict(inputs=(unknown,)), UnknownArtifactError, f"--input {unknown} is not a "
         "registered artifact"),
        (dict(inputs=(gone,)), ValidationError, f"--input: dataset gone ({gone}) is "
         "registered but its payload is not retained (MISSING: the blob is not in the store)"),
        (dict(inputs=("sha256:abc",)), ValidationError, "--input: not a sha256:<64 hex> "
         "digest: 'sha256:abc'"),
        (dict(inputs=("data/nope.csv",)), ValidationError, "--input: data/nope.csv does not "
         "exist"),
        (dict(base=unknown), UnknownArtifactError, f"--base {unknown} is not a registered "
         "artifact"),
        (dict(output=Path("out/stale.npy")), ValidationError, "--output: out/stale.npy "
         "already exists"),
        (dict(kind="dataset"), ValidationError, "--kind: a trained artifact is a model or an "
         "adapter, not 'dataset'"),
        (dict(command=[]), ValidationError, "command: give the training command after --"),
        (dict(env=("BAD-NAME",)), ValidationError, "--env: not an environment variable name: "
         "'BAD-NAME'"),
        (dict(params=Path("nope.json")), ValidationError, "--params: nope.json is not a file"),
        (dict(name=" "), ValidationError, "--name: a closure needs a name"),
    ]
    for kw, error, message in cases:
        kw.setdefault("command", cmd)
        with pytest.raises(error) as exc:
            capture(store, train_spec(repo, **kw))
        assert exc.value.message == message
    assert not marker.exists()
    with store.read() as conn:
        assert closures.list_closures(conn) == []
        assert [a.digest for a in artifacts.list_artifacts(conn)] == [gone]


def test_outside_a_git_repository_the_closure_is_incomplete(ledger, tmp_path):
    work = tmp_path / "loose"
    work.mkdir()
    (work / "w.py").write_text("open('w.bin', 'wb').write(b'weights')\n")
    result = capture(ledger.store, train_spec(
        work, command=[sys.executable, "w.py"], output=Path("w.bin"), inputs=(), params=None))
    row = result.closure
    assert row.status == "incomplete" and row.complete is False
    assert row.gaps == [f"code: {work} is not inside a git repository"]
    assert result.artifact.digest == dg.of_bytes(b"weights")  # still registered
    assert result.record["code"]["commit"] is None and result.record["cwd"]["root"] == "absolute"


def test_a_large_untracked_file_and_a_nested_repository_are_gaps(ledger, tmp_path, monkeypatch):
    monkeypatch.setattr(closure_git, "MAX_UNTRACKED", 1000)
    repo = make_repo(tmp_path)
    (repo / "checkpoint.bin").write_bytes(b"x" * 1001)
    (repo / "vendor").mkdir()
    git(repo / "vendor", "init", "-q")
    (repo / "vendor" / "lib.py").write_text("x = 1\n")
    result = capture(ledger.store, train_spec(repo))
    assert result.closure.gaps == [
        "code: untracked file checkpoint.bin (1,001 bytes) is larger than 1,000 bytes and was not "
        "captured; commit it or pass it as --input",
        "code: vendor/ is a nested git repository and was not captured"]
    assert result.record["code"]["skipped"] == [{"path": "checkpoint.bin", "bytes": 1001},
                                                {"path": "vendor/", "bytes": None}]
    assert result.artifact is not None and result.closure.status == "incomplete"


def test_the_tail_keeps_the_last_lines_and_a_directory_output_is_a_manifest(ledger, tmp_path):
    repo = make_repo(tmp_path)
    script = ("import os\nfor i in range(500): print('line', i)\n"
              "os.makedirs('ckpt/sub')\nopen('ckpt/a.bin','wb').write(b'a')\n"
              "open('ckpt/sub/b.bin','wb').write(b'b')\n")
    (repo / "many.py").write_text(script)
    streamed = []
    result = capture(ledger.store, train_spec(repo, command=[sys.executable, "many.py"],
                                              output=Path("ckpt"), kind="adapter"),
                     sink=streamed.append)
    tail = result.record["output_tail"].splitlines()
    assert len(tail) == TAIL_LINES and tail[0] == "line 300" and tail[-1] == "line 499"
    assert b"".join(streamed).count(b"\n") == 500  # everything streamed, only the tail kept
    art = result.artifact
    assert art.kind == "adapter" and art.is_directory
    assert art.digest == dg.of_bytes(
        f"a.bin\t{dg.of_bytes(b'a')}\nsub/b.bin\t{dg.of_bytes(b'b')}\n".encode())
    assert result.record["output"]["is_directory"] and result.record["output"]["bytes"] == 2


def test_a_digest_input_is_recorded_at_its_registered_path_and_checked(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    data = artifacts.register_path(store, "dataset", repo / "data" / "train.csv",
                                   name="train").artifact
    result = capture(store, train_spec(repo, inputs=(data.digest,)))
    assert result.closure.status == "complete" and result.registered_inputs == []
    assert result.record["inputs"] == [{"digest": data.digest, "kind": "dataset",
                                        "name": "train", "given": "digest", "root": "repo",
                                        "path": "data/train.csv"}]
    assert "train.csv" not in store.blobs.get(result.record["code"]["diff"]).decode()
    (repo / "data" / "train.csv").write_text(DATA + "9,9,9\n")  # edited after registration
    (repo / "out" / "weights.npy").unlink()
    again = capture(store, train_spec(repo, inputs=(data.digest,)))
    assert again.closure.gaps == [
        f"input train: {repo / 'data' / 'train.csv'} no longer holds {data.digest}, so what "
        "the command reads there is not the recorded input"]
