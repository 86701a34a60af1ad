"""Exported chain heads: every field signed under a version tag (Ed25519 or HMAC), unsigned
or wrongly signed heads refused when a key is configured, and a heads log proving the
ledger extends every head in it."""

from __future__ import annotations

import base64

import orjson
import pytest

from modelward.errors import ConfigError, ValidationError
from modelward.ledger import chain, decisions, heads
from modelward.ledger.schema import chain_blocks, decision_rollups
from modelward.ledger.schema import decisions as decisions_table
from modelward.settings import Settings

from . import test_chain
from .test_chain import BLOCKS, PER_BLOCK, rewrite_consistently, verify

blocks = test_chain.blocks  # the fixture


def keys(tmp_path=None, *, hmac: str | None = None, sign: bool = False,
         verify_only: bool = False, monkeypatch=None) -> heads.Keys:
    """Keys as a process configures them: an HMAC secret, or an Ed25519 pair."""
    values = {}
    if sign or verify_only:
        prefix = tmp_path / "heads"
        if not (tmp_path / "heads.key").exists():
            heads.generate(prefix)
        values["signing_key_file" if sign else "verify_key_file"] = str(
            prefix) + (".key" if sign else ".pub")
    if hmac is not None:
        monkeypatch.setenv("MODELWARD_SIGNING_KEY", hmac)
    return heads.keys_from(Settings(values, env={}))


def head(store, k=None) -> dict:
    with store.read() as conn:
        return heads.head(conn, k or heads.Keys())


def check(store, exported, k=None) -> list[str]:
    with store.read() as conn:
        return heads.check(conn, exported, k or heads.Keys())


def test_head_catches_a_consistent_rewrite(store, blocks):
    exported = head(store)
    assert exported["blocks"] == BLOCKS and exported["decisions"] == BLOCKS * PER_BLOCK
    assert exported["root"] == verify(store).head_root and "signature" not in exported
    assert exported["version"] == 1
    assert exported["last_decision_at"] == "2026-03-01T00:00:00.000304Z"
    assert check(store, exported) == []
    rewrite_consistently(store, blocks[1][0])
    assert verify(store).ok  # the rewrite fools verify on its own...
    problems = check(store, exported)  # ...but not a head kept elsewhere
    assert problems == [f"block {BLOCKS} has root {verify(store).head_root}, the exported head "
                        f"says {exported['root']}: the log was rewritten"]


def test_head_catches_truncation_and_accepts_growth(store, blocks):
    exported = head(store)
    decisions.append(store, [decisions.normalize({"subject": "later"})[0]])
    assert check(store, exported) == []  # the ledger still extends the exported head
    with store.write() as conn:
        conn.execute(decisions_table.delete().where(decisions_table.c.block >= BLOCKS))
        conn.execute(chain_blocks.delete().where(chain_blocks.c.number >= BLOCKS))
        # (their rollups left behind would give the deletion away to verify)
        conn.execute(decision_rollups.delete().where(decision_rollups.c.block >= BLOCKS))
    assert verify(store).ok
    assert check(store, exported) == [
        f"block {BLOCKS} named by the exported head is gone (the ledger ends at block "
        f"{BLOCKS - 1}): blocks were deleted after the head was exported"]


def test_empty_head(store):
    exported = head(store)
    assert (exported["root"], exported["blocks"], exported["decisions"]) == (chain.GENESIS, 0, 0)
    assert exported["last_decision_at"] is None
    assert check(store, exported) == []


def test_an_hmac_head_signs_every_field_and_unsigned_heads_are_refused(store, blocks,
                                                                        monkeypatch):
    k = keys(hmac="s3cret", monkeypatch=monkeypatch)
    exported = head(store, k)
    assert exported["signature"].startswith("hmac-sha256:") and len(exported["signature"]) == 76
    assert check(store, exported, k) == []
    altered = "the head's HMAC signature does not match its fields: it was altered"
    # every field is covered, including the ones the old format left out, and added ones
    for forged in (dict(exported, decisions=exported["decisions"] + 1),
                   dict(exported, root="0" * 64), dict(exported, exported_at="2030-01-01T00:00:00Z"),
                   dict(exported, last_decision_at=None), dict(exported, note="trust me"),
                   {f: v for f, v in exported.items() if f != "last_decision_at"}):
        assert check(store, forged, k)[0] == altered
    other = keys(hmac="other", monkeypatch=monkeypatch)
    assert check(store, exported, other) == [altered]
    # the attack: a re-sealed chain plus an unsigned head.json, while the key is set
    unsigned = {f: v for f, v in exported.items() if f != "signature"}
    assert check(store, unsigned, k) == [
        "the head is unsigned, but the HMAC key in MODELWARD_SIGNING_KEY is configured: an "
        "unsigned head proves nothing (anyone with the database could have made it)"]
    # a head of the old format (signed root:blocks:decisions only) is refused
    old = dict(unsigned, signature="hmac-sha256:" + "0" * 64)
    del old["version"]
    assert check(store, old, k) == [
        "the head is signed in format version 0, which signed only some of its fields; "
        "re-export it with this modelward"]
    monkeypatch.delenv("MODELWARD_SIGNING_KEY")
    assert check(store, exported, heads.keys_from(Settings({}, env={}))) == [
        "the head is signed with HMAC, but MODELWARD_SIGNING_KEY is not set to check it"]


def test_an_ed25519_head_is_verified_with_the_public_key_alone(store, blocks, tmp_path):
    signer = keys(tmp_path, sign=True)
    exported = head(store, signer)
    scheme, kid, sig = exported["signature"].split(":")
    assert scheme == "ed25519" and len(base64.b64decode(sig)) == 64
    verifier = keys(tmp_path, verify_only=True)
    assert verifier.signing_key is None and heads.key_id(verifier.verify_key) == kid
    assert check(store, exported, verifier) == []
    assert check(store, dict(exported, blocks=BLOCKS - 1), verifier)[0] == (
        "the head's Ed25519 signature does not match its fields: it was altered")
    unsigned = {f: v for f, v in exported.items() if f != "signature"}
    assert check(store, unsigned, verifier)[0].startswith(
        f"the head is unsigned, but the Ed25519 key {kid} is configured")
    # the signature is bound to the tag: the same bytes signed without it do not verify
    bare = signer.signing_key.sign(orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS))
    forged = dict(unsigned, signature=f"ed25519:{kid}:" + base64.b64encode(bare).decode())
    assert check(store, forged, verifier)[0].endswith("it was altered")
    # another key pair
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = keys(other_dir, verify_only=True)
    assert check(store, exported, other)[0] == (
        f"the head is signed by Ed25519 key {kid}, not by the configured key "
        f"{heads.key_id(other.verify_key)}")
    # an HMAC-signed head where an Ed25519 key is expected names the missing HMAC key
    assert check(store, dict(unsigned, signature="hmac-sha256:00"), verifier)[0] == (
        "the head is signed with HMAC, but MODELWARD_SIGNING_KEY is not set to check it")


def test_a_bad_key_file_is_a_config_error(tmp_path):
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(ConfigError, match="is not a PEM Ed25519 public key"):
        heads.keys_from(Settings({"verify_key_file": str(tmp_path / "bad.pub")}, env={}))
    with pytest.raises(ConfigError, match="cannot read"):
        heads.keys_from(Settings({"signing_key_file": str(tmp_path / "none.key")}, env={}))
    heads.generate(tmp_path / "k")
    with pytest.raises(ValidationError, match="refusing to overwrite"):
        heads.generate(tmp_path / "k")
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600


def test_a_heads_log_proves_the_ledger_extends_every_head(store, blocks, tmp_path):
    log = tmp_path / "heads.log"
    heads.append_log(log, head(store))
    for _ in range(2):
        decisions.append(store, [decisions.normalize({"subject": "later"})[0]])
        heads.append_log(log, head(store))
    logged = heads.read_log(log.read_bytes())
    assert [h["blocks"] for h in logged] == [BLOCKS, BLOCKS + 1, BLOCKS + 2]
    with store.read() as conn:
        assert heads.check_log(conn, logged, heads.Keys()) == []
    # delete the newest block after it was exported: the newest logged head is gone
    with store.write() as conn:
        conn.execute(decisions_table.delete().where(decisions_table.c.block == BLOCKS + 2))
        conn.execute(chain_blocks.delete().where(chain_blocks.c.number == BLOCKS + 2))
        conn.execute(decision_rollups.delete().where(decision_rollups.c.block == BLOCKS + 2))
    assert verify(store).ok  # verify alone sees a shorter, intact chain
    with store.read() as conn:
        assert heads.check_log(conn, logged, heads.Keys()) == [
            f"head 3 (block {BLOCKS + 2}): block {BLOCKS + 2} named by the exported head is "
            f"gone (the ledger ends at block {BLOCKS + 1}): blocks were deleted after the "
            "head was exported"]
    # a block between a logged head and the newest that no longer links
    with store.write() as conn:
        conn.execute(chain_blocks.update().where(chain_blocks.c.number == BLOCKS + 1)
                     .values(prev_root="e" * 64))
    with store.read() as conn:
        problems = heads.check_log(conn, logged, heads.Keys())
    assert problems[0] == (f"head 1 (block {BLOCKS}): block {BLOCKS + 1} does not link to "
                           f"block {BLOCKS}: the chain after the head was rewritten")
    # a head older than the one logged before it (a log spliced by hand)
    with store.read() as conn:
        assert heads.check_log(conn, [logged[1], logged[0]], heads.Keys())[0] == (
            f"head 2 (block {BLOCKS}): older than the head logged before it (block "
            f"{BLOCKS + 1})")


def test_a_malformed_head_or_log_is_refused(store):
    for bad in ([1], {"root": "a"}, {"blocks": 1}, {"root": 5, "blocks": 1},
                {"root": "a", "blocks": "1"}, {"root": "a", "blocks": -1}):
        with pytest.raises(ValidationError, match="not an exported chain head") as exc:
            check(store, bad)
        assert exc.value.field == "head"
    assert check(store, {"root": chain.GENESIS, "blocks": 0, "version": 1, "signature": 5}) == [
        "the head's signature is not a string"]
    with pytest.raises(ValidationError, match="line 2: not JSON"):
        heads.read_log(b'{"root": "a", "blocks": 0}\n{\n')
    with pytest.raises(ValidationError, match="line 1: not an exported chain head"):
        heads.read_log(b'{"root": 1}\n')
    with pytest.raises(ValidationError, match="holds no head"):
        heads.read_log(b"\n")
