"""Who acts on the CLI: --actor/--as default from MODELWARD_ACTOR, modelward.toml and git's
user.email; with none, alias moves and approvals are refused. Protected aliases move only
through a promotion or a recorded break-glass."""

from __future__ import annotations

import orjson

from ..conftest import TESTER
from . import test_ledger_cli
from .test_ledger_cli import sha

cli, ready = test_ledger_cli.cli, test_ledger_cli.ready  # the fixtures

NO_IDENTITY = ("error: --actor: no identity: --actor was not given, and neither "
               "MODELWARD_ACTOR, `actor` in modelward.toml nor `git config user.email` "
               "names you\nhint: pass --actor you@example.com, or `export "
               "MODELWARD_ACTOR=you@example.com`, or `git config --global user.email "
               "you@example.com`\n")


def _models(runner, tmp_path, n=3) -> list[str]:
    out = []
    for i in range(n):
        (tmp_path / f"w{i}.bin").write_bytes(b"weights-%d" % i)
        runner.ok("register", "model", tmp_path / f"w{i}.bin", "--name", "chat")
        out.append(sha(b"weights-%d" % i))
    return out


def test_the_actor_defaults_from_env_toml_and_git_and_is_required(ready, tmp_path,
                                                                   monkeypatch):
    run = ready
    a, b, c = _models(run, tmp_path)
    # git's user.email (the tests' git identity)
    assert run.json("alias", "set", "chat/v1", a)["event"]["actor"] == TESTER
    # modelward.toml beats git, MODELWARD_ACTOR beats the file, --actor beats everything
    (tmp_path / "home" / "modelward.toml").write_text('[modelward]\nactor = "Ann@Example.com"\n')
    assert run.json("alias", "set", "chat/v1", b)["event"]["actor"] == "ann@example.com"
    monkeypatch.setenv("MODELWARD_ACTOR", "ben@example.com")
    assert run.json("alias", "set", "chat/v1", c)["event"]["actor"] == "ben@example.com"
    assert run.json("alias", "set", "chat/v1", a, "--actor", "cy@example.com")["event"][
        "actor"] == "cy@example.com"
    assert run.fails("alias", "set", "chat/v1", b, "--actor", "cy") == (
        "error: --actor: not an e-mail address: 'cy'\nhint: write e.g. alice@example.com\n")
    # nobody at all: refused, nothing recorded
    monkeypatch.delenv("MODELWARD_ACTOR")
    (tmp_path / "home" / "modelward.toml").unlink()
    monkeypatch.setenv("GIT_CONFIG_COUNT", "0")
    assert run.fails("alias", "set", "chat/v1", b) == NO_IDENTITY
    assert len(run.json("alias", "history", "chat/v1")) == 4
    assert run.fails("promote", "approve", "0196c1d2-0000-7000-8000-000000000000") == (
        NO_IDENTITY.replace("--actor", "--as"))


def test_a_protected_alias_moves_only_through_a_promotion_or_break_glass(ready, tmp_path):
    run = ready
    a, b, c = _models(run, tmp_path)
    run.ok("alias", "set", "chat/v1", a)
    run.ok("alias", "owners", "chat/v1", "--owner", "ann@example.com", "--reviewer",
           "bob@example.com")
    assert run.fails("alias", "set", "chat/v1", b) == (
        "error: chat/v1 is protected (reviewers of record: bob@example.com): it moves only "
        "through an approved promotion\n"
        f"hint: `modelward promote request chat/v1 {b} --reason TEXT`, then a reviewer runs "
        "`modelward promote approve REQUEST_ID`; in an emergency an admin may `modelward "
        f"alias set chat/v1 {b} --break-glass --reason TEXT` (recorded, reported by MW206)\n")
    assert run.fails("alias", "set", "chat/v1", b, "--break-glass") == (
        "error: reason: a break-glass move needs a reason\nhint: --break-glass --reason 'why "
        "the promotion gates are skipped'\n")
    moved = run.json("alias", "set", "chat/v1", b, "--break-glass", "--reason", "incident 42")
    assert (moved["event"]["kind"], moved["event"]["reason"], moved["event"]["evidence"]) == (
        "break-glass", "incident 42", {"break_glass": True, "reviewers": ["bob@example.com"]})
    history = run.json("alias", "history", "chat/v1")
    assert [(e["kind"], e["actor"], e["token_id"]) for e in history] == [
        ("create", TESTER, None), ("break-glass", TESTER, None)]
    # a move cannot be dated in the future (it would hold the alias until then)
    assert run.fails("alias", "set", "chat/v3", c, "--at", "2999-01-01T00:00:00Z").startswith(
        "error: at: 2999-01-01T00:00:00Z is in the future (now is ")
    # a new, never-set alias with reviewers named in advance may be created by hand
    run.ok("alias", "owners", "chat/v2", "--reviewer", "bob@example.com")
    assert run.ok("alias", "set", "chat/v2", c) == f"chat/v2 -> {c} (create)\n"
    # the guard reports the break-glass move
    report = orjson.loads(run("check", "--select", "MW206", "--format", "json").out)
    assert [(f["subject"], f["evidence"]["problems"]) for f in report["findings"]] == [
        ("chat/v1", ["break-glass"])]
