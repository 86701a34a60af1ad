"""`closure reproduce`: rebuild from the record in a fresh directory, with real git clones,
real virtual environments and real training subprocesses, and judge the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from base64 import urlsafe_b64encode
from dataclasses import replace
from hashlib import sha256
from pathlib import Path

import orjson
import pytest

from modelward import digest as dg
from modelward.errors import ModelwardError, NotFoundError, ValidationError
from modelward.ledger import artifacts, closures
from modelward.registry.closure import venv as closure_venv
from modelward.registry.closure.capture import CaptureSpec, capture
from modelward.registry.closure.compare import EvalCompare
from modelward.registry.closure.reproduce import reproduce

from .closure_fixtures import DATA, git, make_repo, train_spec

pytestmark = pytest.mark.slow


def test_end_to_end_a_deterministic_training_rebuilds_bitwise_identical(ledger, tmp_path,
                                                                        monkeypatch):
    store = ledger.store
    monkeypatch.setenv("MW_TEST_MODE", "abc")
    repo = make_repo(tmp_path)
    result = capture(store, train_spec(repo))
    recorded = result.artifact.digest
    # the rebuild must use the recorded variables, not whatever the shell has now
    monkeypatch.setenv("MW_TEST_MODE", "something else")
    streamed, said = [], []
    rep = reproduce(store, recorded, tmp_path / "rebuild", sink=streamed.append,
                    progress=said.append)
    work = tmp_path / "rebuild"
    assert (rep.verdict, rep.new_digest, rep.recorded_digest) == ("identical", recorded, recorded)
    assert rep.differences == [] and rep.exit_code == 0 and rep.closure == result.closure.digest
    assert dg.of_file(work / "src" / "out" / "weights.npy") == recorded
    # the clone is at the recorded commit with the uncommitted work applied on top
    assert git(work / "src", "rev-parse", "HEAD") == result.record["code"]["commit"]
    assert "SCALE = 0.5" in (work / "src" / "train.py").read_text()
    assert (work / "src" / "helper.py").is_file() and not (work / "src" / "obsolete.txt").exists()
    assert (work / "src" / "data" / "train.csv").read_text() == DATA
    assert rep.code == {"source": str(repo.resolve()), "commit": result.record["code"]["commit"],
                        "patch": result.record["code"]["diff"],
                        "patch_bytes": result.record["code"]["diff_bytes"]}
    # same interpreter and packages as recorded: a venv over them, nothing installed
    env = rep.environment
    assert (env["mode"], env["installed"], env["skipped"], env["differences"]) == (
        "system", [], [], [])
    assert env["python"] == str(work / "venv" / "bin" / "python")
    assert b"".join(streamed).decode().strip() == rep.output_tail == result.record["output_tail"]
    assert said == [f"checking out {result.record['code']['commit'][:12]} from {repo.resolve()}",
                    f"creating a virtual environment (system) in {work / 'venv'}",
                    f"running {work / 'venv' / 'bin' / 'python'} train.py data/train.csv "
                    "params.json out/weights.npy"]
    saved = orjson.loads((work / "reproduce.json").read_bytes())
    assert saved["verdict"] == "identical" and saved == orjson.loads(orjson.dumps(rep.to_dict()))
    # the closure's digest works as well as the artifact's
    again = reproduce(store, result.closure.digest, tmp_path / "again")
    assert again.verdict == "identical"


def test_one_changed_input_byte_in_the_blob_store_diverges(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    result = capture(store, train_spec(repo))
    data = dg.of_bytes(DATA.encode())
    blob = store.blobs.path_of(data)
    raw = bytearray(blob.read_bytes())
    raw[-2] = ord("9")  # 2,1,0 -> 2,1,9: one byte
    blob.write_bytes(bytes(raw))
    rep = reproduce(store, result.artifact.digest, tmp_path / "rebuild")
    assert rep.verdict == "diverged" and rep.new_digest != rep.recorded_digest
    corrupt, output = rep.differences
    assert corrupt == {"what": "input", "digest": data, "file": None, "problem": "corrupt",
                       "stored_digest": dg.of_bytes(bytes(raw)),
                       "detail": f"input train.csv {data} was restored from a corrupt blob"}
    assert output["what"] == "output" and output["recorded"] == rep.recorded_digest
    assert output["now"] == rep.new_digest and output["first_difference"] >= 128
    assert output["detail"] == (f"output digest {rep.recorded_digest} -> {rep.new_digest}; "
                                f"first differing byte at offset {output['first_difference']:,}")


def test_a_changed_input_file_outside_the_repository_is_never_overwritten(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    outside = tmp_path / "datasets" / "train.csv"
    outside.parent.mkdir()
    outside.write_text(DATA)
    result = capture(store, train_spec(repo, inputs=(str(outside),), command=[
        sys.executable, "train.py", str(outside), "params.json", "out/weights.npy"]))
    assert result.record["inputs"][0]["root"] == "absolute"
    outside.write_text(DATA.replace("10", "90"))  # one byte changed after training
    with pytest.raises(ValidationError) as exc:
        reproduce(store, result.artifact.digest, tmp_path / "rebuild")
    assert exc.value.message == (f"--input: {outside} exists outside the reproduction's "
                                 "workdir and holds other content; it is not overwritten")
    outside.unlink()  # gone: restored from the blob store to where the training read it
    rep = reproduce(store, result.artifact.digest, tmp_path / "rebuild2")
    assert rep.verdict == "identical" and outside.read_text() == DATA


def test_a_directory_output_names_the_files_that_differ(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    (repo / "ckpt.py").write_text(
        "import os, time\nos.makedirs('ckpt', exist_ok=True)\n"
        "open('ckpt/weights.bin', 'wb').write(b'same')\n"
        "open('ckpt/stamp.txt', 'w').write(str(time.time_ns()))\n")
    result = capture(store, train_spec(repo, command=[sys.executable, "ckpt.py"],
                                       output=Path("ckpt")))
    rep = reproduce(store, result.artifact.digest, tmp_path / "rebuild")
    assert rep.verdict == "diverged"
    assert rep.differences[0]["what"] == "output"
    assert [d["detail"] for d in rep.differences[1:]] == ["changed: stamp.txt"]


def test_eval_scores_within_tolerance_are_equivalent_and_beyond_it_diverged(ledger, tmp_path,
                                                                           monkeypatch):
    store = ledger.store
    monkeypatch.setenv("MW_CLOSURE_TEST_BLOBS", str(store.blobs.root))
    repo = make_repo(tmp_path)
    # the "model" answers from the training data and carries a timestamp: never bitwise equal
    (repo / "fit.py").write_text(
        "import json, sys, time\nanswer = open('data/train.csv').read().split(',')[0]\n"
        "json.dump({'answer': answer, 'trained_at': time.time_ns()}, open('model.json', 'w'))\n")
    result = capture(store, train_spec(repo, command=[sys.executable, "fit.py"],
                                       output=Path("model.json")))
    prompt = artifacts.register_bytes(store, "prompt", b"What is {q}?", name="ask").artifact
    evalset = tmp_path / "items.jsonl"
    evalset.write_text("".join(json.dumps({"id": f"q{i}", "input": {"q": f"{i}"},
                                           "expected": "1"}) + "\n" for i in range(4)))
    spec = EvalCompare(str(evalset), "tests.registry.closure.test_closure_reproduce:answer",
                       prompt.digest, ("exact",), tolerance=0.0)
    rep = reproduce(store, result.artifact.digest, tmp_path / "r1", evaluate=spec)
    assert rep.verdict == "equivalent" and rep.new_digest != rep.recorded_digest
    assert rep.eval["within_tolerance"] and rep.eval["scores"]["pass_rate"] == {
        "recorded": 1.0, "reproduced": 1.0, "delta": 0.0}
    assert [d["what"] for d in rep.differences] == ["output"]
    with store.read() as conn:
        rebuilt = artifacts.get(conn, rep.eval["reproduced_digest"])
    assert rebuilt.version == "reproduced" and rebuilt.meta["reproduces"] == rep.closure

    blob = store.blobs.path_of(dg.of_bytes(DATA.encode()))
    blob.write_bytes(b"4" + blob.read_bytes()[1:])  # the data now says 4: answers change
    rep = reproduce(store, result.artifact.digest, tmp_path / "r2",
                    evaluate=replace(spec, tolerance=0.5))
    assert rep.verdict == "diverged" and not rep.eval["within_tolerance"]
    assert rep.eval["scores"]["pass_rate"] == {"recorded": 1.0, "reproduced": 0.0, "delta": -1.0}
    assert rep.differences[-2]["detail"] == "eval exact.mean 1 -> 0 (tolerance 0.5)"
    assert rep.differences[-1]["detail"] == "eval pass_rate 1 -> 0 (tolerance 0.5)"


def answer(prompt: str, *, model: str, item: dict) -> str:
    """A runner that loads the model (model.json) from the blob store by its digest."""
    from modelward.ledger.blobs import BlobStore

    blobs = BlobStore(Path(os.environ["MW_CLOSURE_TEST_BLOBS"]))
    return json.loads(blobs.get(model))["answer"]


def _wheel(directory: Path, name: str, version: str, module: str) -> None:
    """A minimal pure-Python wheel, built by hand: no network, no build backend."""
    files = {f"{name}.py": module.encode(),
             f"{name}-{version}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    lines = [f"{n},sha256={urlsafe_b64encode(sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
             for n, d in files.items()]
    record = "\n".join(lines + [f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
        z.writestr(f"{name}-{version}.dist-info/RECORD", record)


def test_the_pip_path_installs_the_recorded_distributions_pinned(ledger, tmp_path):
    """A small interpreter (its own venv with two hand-made wheels) trains; the rebuild
    creates a fresh venv and installs the recorded versions from a local wheel directory,
    skipping one pip cannot find, which is reported as a difference."""
    store = ledger.store
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "mwdemo", "1.0", "VALUE = 41\n")
    _wheel(wheels, "mwextra", "2.0", "")
    trainer = tmp_path / "trainer"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(trainer)], check=True)
    py = trainer / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "--no-index", "--find-links", str(wheels), "mwdemo==1.0", "mwextra==2.0"],
                   check=True)
    repo = make_repo(tmp_path)
    (repo / "tiny.py").write_text("import mwdemo, os\nopen('w.txt', 'w').write("
                                  "str(mwdemo.VALUE * int(os.environ['MODELWARD_SEED'])))\n")
    result = capture(store, CaptureSpec(name="tiny", command=[str(py), "tiny.py"],
                                        output=Path("w.txt"), seeds=(3,), cwd=repo))
    assert sorted(result.record["environment"]["distributions"]) == ["mwdemo", "mwextra"]
    (wheels / "mwextra-2.0-py3-none-any.whl").unlink()
    rep = reproduce(store, result.artifact.digest, tmp_path / "rebuild", env_mode="pip",
                    pip_args=("--no-index", f"--find-links={wheels}"))
    assert rep.verdict == "identical" and (tmp_path / "rebuild" / "src" / "w.txt").read_text() == "123"
    env = rep.environment
    assert env["mode"] == "pip" and env["installed"] == ["mwdemo"]
    [skipped] = env["skipped"]
    assert skipped["name"] == "mwextra" and skipped["requirement"] == "mwextra==2.0"
    assert "mwextra==2.0" in skipped["reason"]
    assert env["differences"] == [{"what": "distribution", "name": "mwextra",
                                   "recorded": "2.0", "now": None}]
    assert rep.differences == [{"what": "distribution", "name": "mwextra", "recorded": "2.0",
                                "now": None, "detail": "environment: mwextra 2.0 is missing"}]
    assert "Successfully installed mwdemo-1.0" in (tmp_path / "rebuild" / "pip.log").read_text()


def test_requirements_pin_versions_and_skip_what_cannot_be_installed():
    req = closure_venv.requirement
    assert req({"name": "numpy", "version": "2.1.0"}) == ("numpy==2.1.0", None)
    assert req({"name": "modelward", "version": "0.1"}) == (
        None, "modelward itself is not reinstalled")
    assert req({"name": "mylib", "version": "0.3", "direct_url": {
        "url": "file:///home/me/mylib", "dir_info": {"editable": True}}}) == (
        None, "installed from a local path (file:///home/me/mylib)")
    assert req({"name": "peft", "version": "0.9", "direct_url": {
        "url": "https://github.com/huggingface/peft", "vcs_info": {
            "vcs": "git", "commit_id": "abc123"}}}) == (
        "peft @ git+https://github.com/huggingface/peft@abc123", None)
    assert req({"name": "tool", "version": "1", "direct_url": {
        "url": "https://example.com/tool-1.tar.gz", "archive_info": {}}}) == (
        "tool @ https://example.com/tool-1.tar.gz", None)


def test_reproduce_refuses_what_it_cannot_rebuild(ledger, tmp_path):
    store = ledger.store
    repo = make_repo(tmp_path)
    good = capture(store, train_spec(repo))
    (repo / "fail.py").write_text("raise SystemExit(4)\n")
    failed = capture(store, train_spec(repo, command=[sys.executable, "fail.py"],
                                       output=Path("never")))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ValidationError, match=f"--workdir: {busy} is not empty"):
        reproduce(store, good.artifact.digest, busy)
    with pytest.raises(ValidationError) as exc:
        reproduce(store, failed.closure.digest, tmp_path / "w1")
    assert exc.value.message == (f"digest: closure {failed.closure.digest} recorded a failed "
                                 "run (exit 4); there is no output to reproduce")
    unknown = dg.of_bytes(b"nothing")
    with pytest.raises(NotFoundError, match=f"no training closure is recorded for {unknown}"):
        reproduce(store, unknown, tmp_path / "w2")
    with pytest.raises(ValidationError, match="--env: unknown environment mode 'conda'"):
        reproduce(store, good.artifact.digest, tmp_path / "w3", env_mode="conda")
    store.blobs.delete(good.record["code"]["diff"])
    with pytest.raises(NotFoundError, match=f"blob {good.record['code']['diff']} is not in"):
        reproduce(store, good.artifact.digest, tmp_path / "w4")
    subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)  # the repository is gone
    with pytest.raises(ModelwardError) as exc:
        reproduce(store, good.artifact.digest, tmp_path / "w5")
    assert exc.value.message == (f"commit {good.record['code']['commit']} could not be "
                                 f"checked out from {repo.resolve()}")


def test_an_existing_artifact_keeps_its_first_closure_and_show_finds_the_best(ledger, tmp_path):
    """Training twice to the same bytes registers one artifact with two closures; the
    newest complete one speaks for it."""
    store = ledger.store
    first = capture(store, train_spec(make_repo(tmp_path / "a")))
    second = capture(store, train_spec(make_repo(tmp_path / "b")))
    assert first.artifact.digest == second.artifact.digest and not second.artifact_created
    assert second.artifact.meta["closure"] == first.closure.digest
    with store.read() as conn:
        row, count = closures.resolve(conn, first.artifact.digest)
    assert (row.digest, count) == (second.closure.digest, 2)


def test_capture_and_reproduce_with_payloads_in_an_s3_bucket(tmp_path, s3_url, monkeypatch):
    """The closure's blobs (diff, lock, params, inputs, output) live in the bucket; the
    rebuild restores them from there, verified, and compares against the recorded output."""
    import modelward

    monkeypatch.setenv("MW_TEST_MODE", "abc")
    led = modelward.open(str(tmp_path / "home"), database_url=f"sqlite:///{tmp_path / 'l.db'}",
                         blob_url=s3_url)
    try:
        store = led.store
        assert store.blobs.remote
        repo = make_repo(tmp_path)
        result = capture(store, train_spec(repo))
        assert store.blobs.has(result.artifact.digest)
        rep = reproduce(store, result.artifact.digest, tmp_path / "rebuild")
        assert rep.verdict == "identical", rep.differences
    finally:
        led.close()
