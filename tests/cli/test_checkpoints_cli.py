"""``modelward verify`` from signed checkpoints, ``verify --full``, ``chain checkpoint``, and
``chain check`` starting from the newest checkpoint."""

from __future__ import annotations

import re

import orjson

from .test_ledger_cli import cli, decision, jsonl, ready  # noqa: F401 - fixtures


def _import(cli, tmp_path, *ids):  # noqa: F811
    path = tmp_path / f"d{ids[0]}.jsonl"
    path.write_bytes(jsonl(*(decision(i) for i in ids)))
    cli.ok("decisions", "import", path)


def test_verify_without_a_key_checks_everything_and_stores_nothing(ready, tmp_path):  # noqa: F811
    _import(ready, tmp_path, 0, 1)
    assert ready.ok("verify").startswith("chain intact: 1 block, 2 decisions")
    report = ready.json("verify")
    assert report["full"] and report["checkpoint_made"] is None
    assert ready.fails("chain", "checkpoint", code=2).startswith(
        "error: no signing key configured")


def test_verify_and_checkpoint_with_a_key(ready, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MODELWARD_SIGNING_KEY", "k3y")
    assert ready.ok("chain", "checkpoint") == "the chain is empty: nothing to checkpoint\n"
    _import(ready, tmp_path, 0, 1)
    out = ready.ok("chain", "checkpoint").splitlines()
    assert out[0].startswith("chain intact: 1 block, 2 decisions")
    assert out[1] == "signed checkpoint 1 stored at block 1 (hmac-sha256)"
    _import(ready, tmp_path, 2, 3)
    out = ready.ok("verify").splitlines()
    assert re.match(r"chain intact: 1 new block after signed checkpoint 1 \(block 1, history "
                    r"last verified in full 20\d\d-.*Z\), 2 decisions", out[0]), out
    assert out[1] == "signed checkpoint 2 stored at block 2"
    report = ready.json("verify", "--no-checkpoint")
    assert (report["full"], report["blocks"], report["from_checkpoint"]["number"]) == (False, 0, 2)
    assert report["checkpoint_made"] is None
    full = ready.json("verify", "--full")
    assert full["full"] and full["decisions"] == 4 and full["checkpoint_made"]["full"]
    # an old decision edited in place: only --full sees it; a new one: both
    ready.sql("UPDATE decisions SET subject = 'x' WHERE id = ?", (decision(0)["id"],))
    assert ready.json("verify", "--no-checkpoint")["ok"]
    assert "chain BROKEN at block 1" in ready.fails("verify", "--full", code=1)
    assert "at block 1" in ready.fails("chain", "check", "--full", "--heads", _log(ready, tmp_path),
                                       code=1)


def _log(cli, tmp_path):  # noqa: F811
    head = orjson.loads(cli.ok("chain", "head"))
    path = tmp_path / "heads.log"
    path.write_bytes(orjson.dumps(head) + b"\n")
    return path


def test_chain_check_starts_from_the_checkpoint(ready, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MODELWARD_SIGNING_KEY", "k3y")
    _import(ready, tmp_path, 0, 1)
    ready.ok("chain", "checkpoint")
    log = _log(ready, tmp_path)
    ready.sql("UPDATE decisions SET subject = 'x' WHERE id = ?", (decision(0)["id"],))
    assert ready.ok("chain", "check", "--heads", log).startswith("the ledger extends all 1 heads")
    assert ready.fails("chain", "check", "--heads", log, "--full", code=1).startswith(
        "the ledger fails verification at block 1")
    # a forged checkpoint row is itself a failure
    ready.sql("UPDATE chain_checkpoints SET signature = 'hmac-sha256:00'")
    err = ready.fails("chain", "check", "--heads", log, code=1)
    assert "checkpoint 1 is not to be trusted: its HMAC signature does not match" in err
