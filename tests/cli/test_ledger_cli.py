"""The ledger commands end to end, asserting exact output: init, register, artifacts, alias,
decisions, erase, verify and chain. Errors are one red line plus a hint, exit 2."""

from __future__ import annotations

import re
import subprocess
import sys

import orjson
import pytest
import sqlalchemy as sa

from modelward.ledger import subject_keys
from modelward.ledger.engine import Store
from modelward.settings import Settings

from ..conftest import TESTER, database_url
from .runner import Cli, sha

KINDS = "model, adapter, prompt, embedder, reranker, dataset, evalset, config, policy"


@pytest.fixture(params=["sqlite-file", "postgres"])
def cli(request, tmp_path) -> Cli:
    url = database_url(request.param, tmp_path, request)
    return Cli(tmp_path / "home", url)


@pytest.fixture
def ready(cli) -> Cli:
    cli.ok("init")
    return cli


def test_init_and_db(cli, tmp_path):
    assert cli.fails("artifacts") == (f"error: no modelward ledger at {cli.display_url}\n"
                                      "hint: run `modelward init`\n")
    assert cli.ok("db", "revision") == f"revision none (this modelward needs {cli.head})\n"
    assert cli.ok("init") == (f"initialised ledger at {cli.display_url} (revision none -> {cli.head})\n"
                              f"blobs in {tmp_path / 'home' / 'blobs'}\n")
    assert (tmp_path / "home" / "blobs").is_dir()
    assert cli.ok("init") == f"ledger at {cli.display_url} is up to date (revision {cli.head})\n"
    assert cli.ok("db", "upgrade") == f"ledger at {cli.display_url} is up to date (revision {cli.head})\n"
    assert cli.json("db", "revision") == {"revision": cli.head, "head": cli.head, "up_to_date": True}
    assert cli.json("init") == {"database": cli.display_url, "blobs": str(tmp_path / "home" / "blobs"),
                                "revision_before": cli.head, "revision": cli.head}


def test_register_and_artifacts(ready, tmp_path):
    cli = ready
    assert cli.ok("artifacts") == "no artifacts\n"
    (tmp_path / "w.bin").write_bytes(b"weights")
    (tmp_path / "p.txt").write_bytes(b"\xef\xbb\xbfHello\r\n")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.bin").write_bytes(b"a")
    model = sha(b"weights")
    assert cli.ok("register", "model", tmp_path / "w.bin", "--name", "chat", "--version", "1.0",
                  "--owner", "ml@acme.io") == model + "\n"
    assert cli.ok("register", "model", tmp_path / "w.bin", "--name", "again") == model + "\n"
    prompt = cli.ok("register", "prompt", tmp_path / "p.txt", "--name", "[support] prompt").strip()
    assert prompt == sha(b"Hello\n")
    ckpt = cli.ok("register", "adapter", tmp_path / "ckpt", "--name", "lora", "--parent", model,
                  "--no-store").strip()
    assert ckpt == sha(f"a.bin\t{sha(b'a')}\n".encode())
    hosted = cli.json("register", "model", "--hosted", "openai:gpt-4o-2024-08-06", "--name",
                      "gpt-4o", "--retires", "2027-01-01")
    assert hosted["digest"] == sha(b"openai:gpt-4o-2024-08-06") and hosted["created"]
    assert hosted["artifact"]["retires_at"] == "2027-01-01T00:00:00Z"
    again = cli.json("register", "model", tmp_path / "w.bin", "--name", "x")
    assert (again["created"], again["restored_payload"], again["artifact"]["name"]) == (False, False, "chat")

    listed = cli.json("artifacts")
    assert [a["digest"] for a in listed] == [model, prompt, ckpt, hosted["digest"]]
    assert listed[2]["payload"] == "none" and listed[2]["is_directory"] is True
    assert listed[2]["parents"] == [{"digest": model, "relation": "parent"}]
    created = {a["digest"]: a["created_at"] for a in listed}
    assert cli.ok("artifacts") == (
        f"{model}  model     {'chat@1.0':<30}  {created[model]}  blob\n"
        f"{prompt}  prompt    {'[support] prompt':<30}  {created[prompt]}  blob\n"
        f"{ckpt}  adapter   {'lora':<30}  {created[ckpt]}  none\n"
        f"{hosted['digest']}  model     {'gpt-4o':<30}  {created[hosted['digest']]}  "
        "openai:gpt-4o-2024-08-06\n")
    assert cli.ok("artifacts", "--kind", "prompt").startswith(prompt)
    assert len(cli.ok("artifacts", "--kind", "prompt").splitlines()) == 1


def test_register_errors(ready, tmp_path):
    cli = ready
    (tmp_path / "w.bin").write_bytes(b"w")
    missing = sha(b"nothing")
    cases = [
        (("register", "checkpoint", tmp_path / "w.bin", "--name", "x"),
         f"error: kind: unknown artifact kind 'checkpoint'; choose one of {KINDS}\n"),
        (("register", "model", tmp_path / "nope.bin", "--name", "x"),
         f"error: path: {tmp_path / 'nope.bin'} does not exist\n"),
        (("register", "model", tmp_path / "w.bin", "--name", "x", "--parent", missing),
         f"error: parent {missing} is not a registered artifact\nhint: register the parent first\n"),
        (("register", "model", tmp_path / "w.bin", "--name", "x", "--parent", "chat/v1"),
         "error: parent: not a sha256:<64 hex> digest: 'chat/v1'\n"
         "hint: digests look like sha256:9f86d08…; an alias must be resolved first\n"),
        (("register", "model", tmp_path / "w.bin", "--name", "x", "--hosted", "openai:x"),
         "error: path: give either PATH or --hosted, not both\n"),
        (("register", "model", "--name", "x"),
         "error: path: give the PATH of the file or directory to register\n"
         "hint: or --hosted VENDOR:MODEL_ID\n"),
        (("register", "model", tmp_path / "w.bin", "--name", "x", "--retires", "2027-01-01"),
         "error: --retires: --retires applies to --hosted models only\n"),
        (("register", "model", "--hosted", "gpt-4o", "--name", "x"),
         "error: hosted: hosted id 'gpt-4o' is not VENDOR:MODEL_ID\nhint: e.g. openai:gpt-4o-2024-08-06\n"),
        (("register", "model", "--hosted", "openai:x", "--name", "x", "--retires", "soon"),
         "error: --retires: not an ISO 8601 timestamp: 'soon'\nhint: write e.g. 2026-03-01T12:00:00Z\n"),
        (("artifacts", "--kind", "llm"), f"error: kind: unknown artifact kind 'llm'; choose one of {KINDS}\n"),
    ]
    for args, expected in cases:
        assert cli.fails(*args) == expected
    assert cli.ok("artifacts") == "no artifacts\n"


def test_aliases(ready, tmp_path):
    cli = ready
    digests = []
    for i in range(3):
        (tmp_path / f"m{i}.bin").write_bytes(f"m{i}".encode())
        digests.append(cli.ok("register", "model", tmp_path / f"m{i}.bin", "--name", f"m{i}").strip())
    a, b, c = digests
    assert cli.ok("alias", "list") == "no aliases\n"
    assert cli.ok("alias", "set", "chat/v1", a, "--at", "2026-01-01T00:00:00Z", "--actor",
                  "ana@acme.io", "--reason", "first [GA] launch :rocket:") == f"chat/v1 -> {a} (create)\n"
    assert cli.ok("alias", "set", "chat/v1", b, "--at", "2026-02-01T00:00:00Z") == f"chat/v1 -> {b} (move)\n"
    assert cli.ok("alias", "set", "chat/v1", c, "--at", "2026-03-01T00:00:00Z") == f"chat/v1 -> {c} (move)\n"
    assert cli.ok("alias", "set", "chat/v1", b, "--at", "2026-03-01T06:00:00Z", "--reason",
                  "incident") == f"chat/v1 -> {b} (rollback)\n"
    assert cli.ok("alias", "set", "chat/v1", b) == f"chat/v1 already points at {b}\n"
    assert cli.ok("alias", "resolve", "chat/v1") == b + "\n"
    assert cli.ok("alias", "resolve", "chat/v1", "--at", "2026-01-15T00:00:00Z") == a + "\n"
    assert cli.ok("alias", "resolve", "chat/v1", "--at", "2026-03-01T05:59:59Z") == c + "\n"
    assert cli.json("alias", "resolve", "chat/v1", "--at", "2026-03-01T06:00:00+00:00") == {
        "alias": "chat/v1", "digest": b, "at": "2026-03-01T06:00:00Z",
        "since": "2026-03-01T06:00:00Z", "event_id": 4, "event_kind": "rollback",
        "artifact_kind": "model"}
    assert cli.ok("alias", "history", "chat/v1") == (
        f"2026-01-01T00:00:00Z  create    {a}  by ana@acme.io  (first [GA] launch :rocket:)\n"
        f"2026-02-01T00:00:00Z  move      {b}  by {TESTER}\n"
        f"2026-03-01T00:00:00Z  move      {c}  by {TESTER}\n"
        f"2026-03-01T06:00:00Z  rollback  {b}  by {TESTER}  (incident)\n")
    history = cli.json("alias", "history", "chat/v1")
    assert [e["previous_digest"] for e in history] == [None, a, b, c]
    cli.ok("alias", "set", "prompt/support@production", c, "--at", "2026-01-05T00:00:00Z")
    assert cli.ok("alias", "list") == (
        f"{'chat/v1':<32}  {b}  since 2026-03-01T06:00:00Z\n"
        f"{'prompt/support@production':<32}  {c}  since 2026-01-05T00:00:00Z\n")
    assert cli.json("alias", "list")[0] == {"alias": "chat/v1", "digest": b,
                                            "since": "2026-03-01T06:00:00Z"}

    missing = sha(b"never")
    cases = [
        (("alias", "resolve", "chat/v1", "--at", "2025-12-31T00:00:00Z"),
         "error: alias 'chat/v1' did not exist at 2025-12-31T00:00:00Z; it was first set at "
         "2026-01-01T00:00:00Z\n"),
        (("alias", "resolve", "chat/v9"),
         "error: no alias named 'chat/v9'\nhint: list aliases with `modelward alias list`\n"),
        (("alias", "history", "chat/v9"), "error: no alias named 'chat/v9'\n"),
        (("alias", "set", "chat/v1", missing),
         f"error: cannot point chat/v1 at {missing}: no such artifact is registered\n"
         "hint: register it first with `modelward register`\n"),
        (("alias", "set", "chat/v1", a, "--at", "2026-02-15T00:00:00Z"),
         "error: at: 2026-02-15T00:00:00Z is before the alias's last move at 2026-03-01T06:00:00Z; "
         "history is append-only\n"),
        (("alias", "set", "chat/v1", a, "--at", "yesterday"),
         "error: --at: not an ISO 8601 time or a duration: 'yesterday'\n"
         "hint: write a time such as 2026-03-01T12:00:00Z, or a duration back from now such as 7d\n"),
        (("alias", "resolve", "chat/v1", "--at", "2026-01-01T00:00:00"),
         "error: --at: timestamp '2026-01-01T00:00:00' has no UTC offset\n"
         "hint: append Z or an offset such as +02:00\n"),
        (("alias", "set", "has space", a),
         "error: alias: not a valid alias name: 'has space'\n"
         "hint: letters, digits and . _ / @ : + -, e.g. chat/v1\n"),
    ]
    for args, expected in cases:
        assert cli.fails(*args) == expected
    assert len(cli.json("alias", "history", "chat/v1")) == 4


def decision(i: int, **over) -> dict:
    d = {"id": f"0190e4f0-0000-7000-8000-{i:012d}", "at": f"2026-03-01T12:00:0{i}Z",
         "alias": "chat/v1", "model_digest": "sha256:" + "a" * 64, "subject": f"u{i % 2}",
         "input_text": f"question {i}", "output_text": f"answer {i}", "process": "web-1"}
    d.update(over)
    return d


def jsonl(*ds) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in ds)


def test_decisions_import_show_search_erase_verify(ready, tmp_path):
    cli = ready
    (tmp_path / "d.jsonl").write_bytes(jsonl(*(decision(i) for i in range(4))))
    assert cli.ok("decisions", "import", tmp_path / "d.jsonl") == "imported 4 decisions\n"
    assert cli.ok("decisions", "import", tmp_path / "d.jsonl") == "imported 0 decisions (4 already recorded)\n"
    assert cli.json("decisions", "import", "-", input=jsonl(decision(3), decision(4))) == {
        "ok": True, "imported": 1, "duplicates": 1}

    shown = cli.json("decisions", "show", decision(1)["id"])
    assert (shown["at"], shown["subject"], shown["block"], shown["pos"]) == ("2026-03-01T12:00:01Z", "u1", 1, 1)
    store = Store(Settings({"home": str(cli.home), "database_url": cli.url}, env={}))
    try:
        with store.read() as conn:  # keyed with the subject's key
            keyed = subject_keys.chained_digest(conn, "u1", sha(b"question 1"))
    finally:
        store.dispose()
    assert shown["input_digest"] == keyed != sha(b"question 1") and shown["gate"] is None
    text = cli.ok("decisions", "show", decision(1)["id"])
    assert text.splitlines()[:4] == [f"id                   {decision(1)['id']}",
                                     "at                   2026-03-01T12:00:01Z",
                                     "alias                chat/v1",
                                     f"model_digest         sha256:{'a' * 64}"]
    assert f"recorded_at          {shown['recorded_at']}\n" in text
    assert "vendor_model_id" not in text  # empty fields are not shown

    line = "{id}  2026-03-01T12:00:0{i}Z  chat/v1               sha256:{a}  u{s}\n"
    assert cli.ok("decisions", "search", "--subject", "u1") == "".join(
        line.format(id=decision(i)["id"], i=i, a="a" * 64, s=1) for i in (3, 1))
    assert cli.ok("decisions", "search", "--since", "2026-03-01T12:00:02Z", "--until",
                  "2026-03-01T12:00:04Z") == "".join(
        line.format(id=decision(i)["id"], i=i, a="a" * 64, s=i % 2) for i in (3, 2))
    assert len(cli.json("decisions", "search", "--limit", "2")) == 2

    assert cli.ok("erase", "--subject", "u0") == (
        "erased the text of 3 decisions of u0 and destroyed its digest key\n")
    sqlite = cli.url.startswith("sqlite")
    assert cli.json("erase", "--subject", "u0") == {
        "subject": "u0", "erased": 0, "key_destroyed": False, "plain_digests": 0,
        "wal_truncated": True if sqlite else None, "vacuumed": [], "vacuum_held_back": 0}
    verify = cli.ok("verify")
    # the erasure is chained: one block sealing the three erasures
    assert re.fullmatch(r"chain intact: 3 blocks, 5 decisions, 3 records, head [0-9a-f]{16}… "
                        r"\([\d,]+ decisions/s\)\n", verify), verify
    report = cli.json("verify")
    assert (report["ok"], report["blocks"], report["decisions"], report["records"],
            report["first_broken_block"]) == (True, 3, 5, 3, None)


def test_decisions_errors(ready, tmp_path):
    cli = ready
    bad = jsonl(decision(0), {"model_digest": "[bold]chat/v1"}, decision(2)) + b"{nope\n" + jsonl(
        decision(4, at="2026-03-01T12:00:04"))
    (tmp_path / "bad.jsonl").write_bytes(bad)
    err = cli.fails("decisions", "import", tmp_path / "bad.jsonl")
    assert err.splitlines()[0] == ("error: line 2: model_digest: not a sha256:<64 hex> digest: "
                                   "'[bold]chat/v1' (and 2 more bad lines); nothing was imported")
    assert err.splitlines()[1].startswith("  line 4: not valid JSON")
    assert err.splitlines()[2:] == ["  line 5: at: timestamp '2026-03-01T12:00:04' has no UTC offset",
                                    "hint: fix the lines named and import the file again"]
    res = cli("decisions", "import", tmp_path / "bad.jsonl", "--json")
    assert res.code == 2
    body = orjson.loads(res.out)
    assert body["ok"] is False and [p["line"] for p in body["error"]["problems"]] == [2, 4, 5]
    assert cli.fails("decisions", "import", tmp_path / "none.jsonl") == (
        f"error: FILE: {tmp_path / 'none.jsonl'} does not exist\n")
    assert cli.fails("decisions", "show", "nope") == (
        "error: no decision 'nope' in the ledger\n"
        "hint: find decisions with `modelward decisions search`\n")
    assert cli.fails("decisions", "search", "--since", "monday") == (
        "error: --since: not an ISO 8601 time or a duration: 'monday'\n"
        "hint: write a time such as 2026-03-01T12:00:00Z, or a duration back from now such as 7d\n")
    assert "Invalid value for '--limit'" in cli.fails("decisions", "search", "--limit", "-1")
    assert cli.fails("erase", "--subject", "") == "error: subject: name the subject whose text to erase\n"
    assert cli.json("verify")["decisions"] == 0  # the bad file wrote nothing


def test_verify_names_the_broken_block(ready, tmp_path):
    cli = ready
    (tmp_path / "a.jsonl").write_bytes(jsonl(decision(0), decision(1)))
    (tmp_path / "b.jsonl").write_bytes(jsonl(decision(2), decision(3)))
    cli.ok("decisions", "import", tmp_path / "a.jsonl")
    cli.ok("decisions", "import", tmp_path / "b.jsonl")
    cli.sql("UPDATE decisions SET subject = 'mallory' WHERE id = ?", (decision(3)["id"],))
    res = cli("verify")
    assert (res.code, res.out) == (1, "")
    assert res.err == ("chain BROKEN at block 2: decisions do not match the sealed root\n"
                       f"decisions in that block: {decision(2)['id']}, {decision(3)['id']}\n")
    res = cli("verify", "--json")
    assert res.code == 1 and orjson.loads(res.out)["first_broken_block"] == 2
    cli.sql("DELETE FROM decisions WHERE id = ?", (decision(0)["id"],))
    res = cli("verify")
    assert res.code == 1 and res.err == (
        "chain BROKEN at block 1: holds 1 decision, sealed with 2\n"
        f"decisions in that block: {decision(1)['id']}\n"
        "1 more broken blocks (see --json)\n")


def test_chain_head_and_check(ready, tmp_path, monkeypatch):
    cli = ready
    (tmp_path / "a.jsonl").write_bytes(jsonl(decision(0), decision(1)))
    cli.ok("decisions", "import", tmp_path / "a.jsonl")
    head = orjson.loads(cli.ok("chain", "head"))
    assert (head["blocks"], head["decisions"], head["last_decision_at"]) == (1, 2, "2026-03-01T12:00:01Z")
    assert head["root"] == cli.json("verify")["head_root"] and "signature" not in head
    (tmp_path / "head.json").write_text(orjson.dumps(head).decode())
    assert cli.ok("chain", "check", tmp_path / "head.json") == "the ledger extends the exported head (block 1)\n"
    (tmp_path / "b.jsonl").write_bytes(jsonl(decision(2)))
    cli.ok("decisions", "import", tmp_path / "b.jsonl")
    assert cli.ok("chain", "check", tmp_path / "head.json") == "the ledger extends the exported head (block 1)\n"

    monkeypatch.setenv("MODELWARD_SIGNING_KEY", "k3y")
    signed = orjson.loads(cli.ok("chain", "head"))
    assert signed["signature"].startswith("hmac-sha256:")
    (tmp_path / "signed.json").write_bytes(orjson.dumps(dict(signed, decisions=99)))
    assert cli.fails("chain", "check", tmp_path / "signed.json", code=1) == (
        "the head's HMAC signature does not match its fields: it was altered\n")
    # with the key set, the unsigned head exported earlier is refused
    assert cli.fails("chain", "check", tmp_path / "head.json", code=1) == (
        "the head is unsigned, but the HMAC key in MODELWARD_SIGNING_KEY is configured: an "
        "unsigned head proves nothing (anyone with the database could have made it)\n")
    monkeypatch.delenv("MODELWARD_SIGNING_KEY")

    # an edited record that is not a decision: the head still matches, the record does not
    (tmp_path / "roster.csv").write_text("email,status\nana@example.com,active\n")
    cli.ok("people", "sync", tmp_path / "roster.csv")
    cli.sql("UPDATE people SET status = 'left' WHERE email = 'ana@example.com'")
    err = cli.fails("chain", "check", tmp_path / "head.json", code=1)
    assert re.fullmatch(r"the ledger fails verification at block \d+: records differ from what "
                        r"the block sealed \(people ana@example.com \(edited\)\) \(`modelward "
                        r"verify --json` lists every broken block\)\n", err), err
    cli.sql("UPDATE people SET status = 'active' WHERE email = 'ana@example.com'")

    # a rewrite: the whole first block replaced by a re-sealed forgery
    cli.sql("UPDATE chain_blocks SET root = ? WHERE number = 1", ("f" * 64,))
    assert cli.fails("chain", "check", tmp_path / "head.json", code=1).startswith(
        f"block 1 has root {'f' * 64}, the exported head says {head['root']}: the log was rewritten\n"
        "the ledger fails verification at block 1: decisions do not match the sealed root")

    (tmp_path / "junk.json").write_text('{"blocks": "many"}')
    assert cli.fails("chain", "check", tmp_path / "junk.json") == (
        "error: head: not an exported chain head: it needs a root (hex string) and blocks (a count)\n"
        "hint: export one with `modelward chain head --out head.json`\n")
    (tmp_path / "broken.json").write_text("{")
    assert cli.fails("chain", "check", tmp_path / "broken.json").startswith(
        f"error: cannot read an exported head from {tmp_path / 'broken.json'}: ")
    assert cli.fails("chain", "check", tmp_path / "absent.json").startswith(
        f"error: cannot read an exported head from {tmp_path / 'absent.json'}: ")
    assert cli.fails("chain", "check") == (
        "error: HEAD: name an exported head, or a heads log with --heads\n"
        "hint: export one with `modelward chain head --out head.json`\n")


def test_ed25519_heads_and_a_heads_log(ready, tmp_path, monkeypatch):
    """Heads signed with Ed25519, checked with the public key alone; a heads log that
    catches the newest blocks deleted after an export."""
    cli = ready
    assert cli.ok("chain", "keygen", tmp_path / "ops") == (
        f"private key {tmp_path / 'ops.key'} (keep it secret)\npublic key  {tmp_path / 'ops.pub'}\n")
    log, out = tmp_path / "heads.log", tmp_path / "head.json"
    monkeypatch.setenv("MODELWARD_SIGNING_KEY_FILE", str(tmp_path / "ops.key"))
    for i in range(3):
        (tmp_path / f"{i}.jsonl").write_bytes(jsonl(decision(i)))
        cli.ok("decisions", "import", tmp_path / f"{i}.jsonl")
        assert cli.ok("chain", "head", "--out", out, "--log", log) == (
            f"head of block {i + 1} written to {out} and appended to {log}\n")
    assert orjson.loads(out.read_bytes())["signature"].startswith("ed25519:")
    # the verifier holds only the public key
    monkeypatch.delenv("MODELWARD_SIGNING_KEY_FILE")
    monkeypatch.setenv("MODELWARD_VERIFY_KEY_FILE", str(tmp_path / "ops.pub"))
    assert cli.ok("chain", "check", out, "--heads", log) == (
        "the ledger extends the exported head (block 3) (signatures checked)\n"
        f"the ledger extends all 3 heads of {log} (blocks 1 to 3) (signatures checked)\n")
    # the newest block deleted after the export: verify is fooled, the log is not
    cli.sql("DELETE FROM decisions WHERE block = 3")
    cli.sql("DELETE FROM chain_blocks WHERE number = 3")
    cli.sql("DELETE FROM decision_rollups WHERE block = 3")  # else its rollups give it away
    assert cli.ok("verify").startswith("chain intact: 2 blocks")
    assert cli.fails("chain", "check", "--heads", log, code=1) == (
        "head 3 (block 3): block 3 named by the exported head is gone (the ledger ends at "
        "block 2): blocks were deleted after the head was exported\n")
    # an unsigned head, or one signed with a secret the verifier does not hold
    unsigned = {k: v for k, v in orjson.loads(log.read_bytes().splitlines()[0]).items()
                if k != "signature"}
    (tmp_path / "unsigned.json").write_bytes(orjson.dumps(unsigned))
    assert cli.fails("chain", "check", tmp_path / "unsigned.json", code=1).startswith(
        "the head is unsigned, but the Ed25519 key ")
    monkeypatch.setenv("MODELWARD_VERIFY_KEY_FILE", str(tmp_path / "ops.key"))
    assert "is not a PEM Ed25519 public key" in cli.fails("chain", "check", out)


def test_exit_codes_through_the_console_script(tmp_path):
    """The installed entry point: 0 on success, 2 with one error line on bad input, 1 when
    verify finds a broken chain; no traceback unless --debug."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"

    def run(*args):
        return subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                               "--database-url", url, *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=60)

    assert run("init").returncode == 0
    bad = run("alias", "resolve", "nope/v1")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "error: no alias named 'nope/v1'\nhint: list aliases with `modelward alias list`\n"
    debug = run("--debug", "alias", "resolve", "nope/v1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "UnknownAliasError" in debug.stderr
    (tmp_path / "d.jsonl").write_bytes(jsonl(decision(0)))
    assert run("decisions", "import", str(tmp_path / "d.jsonl")).returncode == 0
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE decisions SET subject = 'x'")
    engine.dispose()
    broken = run("verify")
    assert broken.returncode == 1 and broken.stderr.startswith("chain BROKEN at block 1")
    usage = run("alias", "set")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr


def test_verify_with_worker_processes_reports_the_same(ready, tmp_path):
    cli = ready
    for b in range(5):
        (tmp_path / f"{b}.jsonl").write_bytes(jsonl(decision(2 * b), decision(2 * b + 1)))
        cli.ok("decisions", "import", tmp_path / f"{b}.jsonl")
    cli.sql("UPDATE decisions SET subject = 'mallory' WHERE id = ?", (decision(7)["id"],))

    def report(*args):
        res = cli("verify", "--json", *args)
        body = orjson.loads(res.out)
        body.pop("seconds")
        return res.code, body

    one, two = report(), report("--workers", "2")
    assert one == two
    assert one[0] == 1 and one[1]["first_broken_block"] == 4 and one[1]["decisions"] == 10
    assert "Invalid value for '--workers'" in cli.fails("verify", "--workers", "0")
