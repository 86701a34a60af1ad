"""``modelward contamination`` end to end, asserting exact output and exit codes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import orjson
import pytest
from click.testing import CliRunner

import modelward
from modelward.cli.app import main
from modelward.ledger import aliases, artifacts
from tests.conftest import database_url

Q1 = "What is the boiling point of water at sea level in degrees Celsius?"
Q2 = "Who wrote the play Hamlet and in which year was it first performed on stage?"


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(*args) -> Result:
    """``modelward ARGS`` in-process through ``main`` (where errors become exit 2)."""
    with CliRunner().isolation() as (stdout, stderr, _output):
        try:
            main([*map(str, args)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return Result(code, stdout.getvalue().decode(), stderr.getvalue().decode())


@pytest.fixture
def files(tmp_path):
    (tmp_path / "ev.jsonl").write_text(
        orjson.dumps({"id": "q-1", "input": {"question": Q1}}).decode() + "\n"
        + orjson.dumps({"id": "q-2", "input": Q2}).decode() + "\n"
        + orjson.dumps({"id": "q-3", "input": "Name three colours"}).decode() + "\n")
    (tmp_path / "clean.jsonl").write_text('{"text": "Cats and dogs."}\n{"text": "Birds."}\n')
    (tmp_path / "pool.jsonl").write_text(
        orjson.dumps({"id": "d-1", "text": "what is the BOILING point of water, at sea level, "
                                           "in degrees celsius?"}).decode() + "\n"
        + orjson.dumps({"text": f"Trivia night! {Q2} Answers at the end of the night."})
        .decode() + "\n")
    return tmp_path


def test_a_clean_scan_exits_0(files):
    res = run("contamination", "--evalset", "ev.jsonl", "--against", "clean.jsonl")
    assert (res.code, res.err) == (0, "")
    assert res.out == ("clean: none of 3 eval items found in 2 documents from 1 source\n"
                       "1 item shorter than 5 words was checked by exact match only\n")


def test_contamination_is_listed_per_item_and_exits_1(files):
    res = run("contamination", "--evalset", "ev.jsonl", "--against", "clean.jsonl",
              "pool.jsonl")
    assert (res.code, res.err) == (1, "")
    assert res.out == (
        "q-1  exact 1.00  pool.jsonl:1 (d-1)\n"
        "       'what is the BOILING point of water, at sea level, in degrees celsius'\n"
        "q-2  containment 1.00  pool.jsonl:2\n"
        f"       '{Q2.rstrip('?')}'\n"
        "2 of 3 eval items contaminated (exact 1, containment 1) in 4 documents from 2 "
        "sources\n"
        "1 item shorter than 5 words was checked by exact match only\n")


def test_json_output(files):
    res = run("contamination", "--evalset", "ev.jsonl", "--against", "pool.jsonl",
              "--threshold", "0.9", "--ngram", "8", "--json")
    assert res.code == 1
    doc = orjson.loads(res.out)
    assert (doc["evalset"], doc["clean"], doc["items"], doc["contaminated"],
            doc["documents"]) == ("ev.jsonl", False, 3, 2, 2)
    assert (doc["params"]["threshold"], doc["params"]["ngram"]) == (0.9, 8)
    assert doc["findings"][1] == {"item": "q-2", "documents": 1, "matches": [{
        "source": "pool.jsonl", "locator": "pool.jsonl:2", "doc_id": None,
        "method": "containment", "score": 1.0, "scores": {"containment": 1.0, "ngram": 1.0},
        "span": Q2.rstrip("?"), "start": 14, "end": 14 + len(Q2) - 1}]}
    assert doc["sources"] == [{"name": "pool.jsonl", "kind": "file", "digest": None,
                               "documents": 2, "skipped": []}]


def test_modelward_toml_sets_defaults_and_flags_override(files):
    (files / "modelward.toml").write_text('[contamination]\nmethods = ["exact"]\n')
    res = run("contamination", "--evalset", "ev.jsonl", "--against", "pool.jsonl", "--json")
    assert [f["item"] for f in orjson.loads(res.out)["findings"]] == ["q-1"]
    res = run("contamination", "--evalset", "ev.jsonl", "--against", "pool.jsonl",
              "--method", "containment", "--json")
    assert [f["item"] for f in orjson.loads(res.out)["findings"]] == ["q-1", "q-2"]


@pytest.mark.parametrize("args, message", [
    (["--against", "nope.jsonl"], "error: 'nope.jsonl' is not a file or directory, and there "
                                  "is no ledger to resolve it as a digest or an alias\n"
                                  "hint: check the path, or pass --home\n"),
    (["--against", "pool.jsonl", "--threshold", "1.5"],
     "error: --threshold: must be a number in (0, 1], got 1.5\n"),
    (["--against", "pool.jsonl", "--method", "fuzzy"],
     "error: --method: unknown method 'fuzzy'\n"
     "hint: methods: exact, near-duplicate, containment, ngram\n"),
])
def test_bad_input_is_one_red_line_and_exit_2(files, args, message):
    res = run("contamination", "--evalset", "ev.jsonl", *args)
    assert (res.code, res.out, res.err) == (2, "", message)


def test_an_evalset_shaped_like_a_pool_file_is_read_as_the_pool_side_reads_it(files):
    """Records with "text" (the pool side's field) are eval items too: the pool file
    scanned as the eval set finds its own records."""
    (files / "ev-text.jsonl").write_text(
        orjson.dumps({"id": "q-1", "text": Q1}).decode() + "\n"
        + orjson.dumps({"question": Q2, "role": "user"}).decode() + "\n")
    (files / "ev.csv").write_text(f"id,text\nq-1,{Q1}\n")
    (files / "hits.jsonl").write_text(orjson.dumps({"text": Q1}).decode() + "\n")
    res = run("contamination", "--evalset", "ev-text.jsonl", "--against", "pool.jsonl",
              "--json")
    doc = orjson.loads(res.out)
    assert res.code == 1 and {f["item"] for f in doc["findings"]} == {"q-1", "2"}
    res = run("contamination", "--evalset", "ev.csv", "--against", "hits.jsonl")
    assert res.code == 1 and res.out.startswith("q-1  exact 1.00  hits.jsonl:1\n")


def test_an_evalset_with_neither_input_nor_text_names_the_accepted_fields(files):
    (files / "ev-bad.jsonl").write_text('{"id": "q-1", "n": 3}\n')
    res = run("contamination", "--evalset", "ev-bad.jsonl", "--against", "pool.jsonl")
    assert (res.code, res.out) == (2, "")
    assert res.err == (
        "error: --evalset: ev-bad.jsonl is neither an eval set (line 1: n: unknown field(s): n) "
        "nor readable as pool records (ev-bad.jsonl:1 holds no text: an eval item needs an 'input' field, or, as a "
        "pool record, a 'text' field or other string fields); accepted: eval items with "
        "'input' (modelward's eval set format), or records with 'text' or other string "
        "fields, as in pool files\n")
    # a file that means to be an eval set (it names "input") keeps its own error
    (files / "ev-typo.jsonl").write_text('{"id": "q-1", "input": "x", "expectd": "y"}\n')
    res = run("contamination", "--evalset", "ev-typo.jsonl", "--against", "pool.jsonl")
    assert res.code == 2 and "unknown field(s): expectd" in res.err


def test_bad_evalset_exits_2_from_the_console_script(files):
    proc = subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           "contamination", "--evalset", "missing.jsonl", "--against",
                           "pool.jsonl"], capture_output=True, text=True, cwd=files)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("error: 'missing.jsonl' is not a file or directory, and there is no "
                           "ledger to resolve it as a digest or an alias\n"
                           "hint: check the path, or pass --home\n")


@pytest.fixture(params=["sqlite-file", "postgres"])
def url(request, tmp_path) -> str:
    """A database the command can open on its own (not a private in-memory one)."""
    return database_url(request.param, tmp_path, request)


def test_digests_and_prompt_aliases_resolve_through_the_ledger(files, url):
    backend_url = url
    home = files / "home"
    led = modelward.open(str(home), database_url=backend_url)
    try:
        evalset = artifacts.register_path(led.store, "evalset", files / "ev.jsonl",
                                          name="ev").artifact.digest
        prompt = {"template": "{{ question }}", "few_shot": [{"question": Q2, "answer": "1600"}]}
        digest = artifacts.register_bytes(led.store, "prompt", orjson.dumps(prompt),
                                          name="support", version="38").artifact.digest
        with led.store.write() as conn:
            aliases.set_alias(conn, "prompt/support@production", digest)
    finally:
        led.close()
    res = run("--home", home, "--database-url", backend_url, "contamination", "--evalset",
              evalset, "--against", "prompt/support@production")
    assert res.code == 1, res
    # the example holds the question and its answer: 12 of 13 shingles shared
    assert res.out.splitlines()[:2] == [
        "q-2  near-duplicate 0.92  prompt/support@production few_shot[0]",
        f"       '{Q2.rstrip('?')}'"]  # the span: the stretch the shingles matched


def test_a_progress_bar_on_a_terminal_and_none_with_json(files):
    import os
    import pty
    import threading

    def on_a_terminal(*extra) -> tuple[str, str]:
        master, replica = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from modelward.cli.app import main; main()",
             "contamination", "--evalset", "ev.jsonl", "--against", "pool.jsonl", *extra],
            cwd=files, stdout=subprocess.PIPE, stderr=replica,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
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
    assert "scanning" in terminal and "2 documents" in terminal  # the bar, on stderr
    assert stdout.startswith("q-1  exact 1.00") and "scanning" not in stdout
    stdout, terminal = on_a_terminal("--json")
    assert terminal == "" and orjson.loads(stdout)["contaminated"] == 2


def test_every_option_is_documented():
    from pathlib import Path

    import typer

    from modelward.cli.app import app

    text = (Path(__file__).resolve().parents[3] / "docs" / "contamination.md").read_text()
    command = typer.main.get_command(app).get_command(None, "contamination")
    assert "modelward contamination --evalset" in text
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in text, opt
