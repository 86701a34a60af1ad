"""`modelward audit`, `retention`, `gc`, `hold` and `holds`: exact output, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys

import orjson
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.errors import ValidationError
from modelward.ledger import artifacts, decisions
from modelward.timefmt import iso, now_us, parse_time

from .conftest import DAY, T0, model, point, record

runner = CliRunner()


def run(args, *more):
    result = runner.invoke(app, [*args, *more], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_audit_text_report(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    m1 = model(store, tmp_path, b"weights-1", version="v1")
    m2 = model(store, tmp_path, b"weights-2", version="v2", parents=[m1])
    p1 = model(store, tmp_path, b"Answer: {q}", name="support", kind="prompt")
    point(store, "chat/v1", m1, T0 + DAY)
    point(store, "chat/v1", m2, T0 + 10 * DAY)
    good, stale = record(
        store, {"at": T0 + 11 * DAY, "alias": "chat/v1", "model_digest": m2, "prompt_digest": p1,
                "subject": "u-1", "process": "web-1", "input_text": "q", "output_text": "a",
                "vendor_model_id": "chat-v2", "vendor_fingerprint": "fp_9"},
        {"at": T0 + 12 * DAY, "alias": "chat/v1", "model_digest": m1, "process": "web-2"},
        recorded_at=T0 + 12 * DAY + 5)
    b = _block(store, good)  # registrations and alias moves are chained in blocks before it
    assert run(args, "audit", good) == f"""\
decision  {good}
at        2026-01-12T00:00:00Z (recorded 2026-01-13T00:00:00.000005Z)
by        process web-1, subject u-1
problems  none
alias     chat/v1 pointed at {m2} (model chat@v2) at that moment, since 2026-01-11T00:00:00Z (move)
model     {m2}  (matches the alias)
          model chat@v2, registered 2026-01-01T00:00:00Z
          parents {m1} (parent)
          payload present, verified (rehashed now)
prompt    {p1}
          prompt support, registered 2026-01-01T00:00:00Z
          payload present, verified (rehashed now)
vendor    model id chat-v2, fingerprint fp_9
text      kept (input and output)
chain     block {b} verifies and links to block {b - 1} (whole block recomputed now)
links on  this is the newest block
"""
    full = orjson.loads(run(args, "audit", stale, "--json"))  # rehashes chat@v1 (new)
    payload_at = full["digests"][0]["payload"]["verified_at"]
    chain_at = full["chain"]["verified_at"]  # the block was recomputed by the first audit
    assert full["digests"][0]["payload"]["how"] == "rehashed" and full["chain"]["how"] == "proof"
    out = run(args, "audit", stale, "--quick")
    assert out == f"""\
decision  {stale}
at        2026-01-13T00:00:00Z (recorded 2026-01-13T00:00:00.000005Z)
by        process web-2, subject -
PROBLEMS  1
  ! model digest {m1} is NOT what chat/v1 pointed to at 2026-01-13T00:00:00Z ({m2}); chat/v1 pointed at the recorded digest from 2026-01-02T00:00:00Z until 2026-01-11T00:00:00Z
alias     chat/v1 pointed at {m2} (model chat@v2) at that moment, since 2026-01-11T00:00:00Z (move)
model     {m1}  DISAGREES with the alias ({m2})
          model chat@v1, registered 2026-01-01T00:00:00Z
          payload present, verified at {payload_at} (cached: files unchanged since)
text      none kept
chain     block {b} verifies and links to block {b - 1} (decision proven against the sealed root; whole block recomputed at {chain_at})
links on  this is the newest block
"""
    assert full["ok"] is False and full["alias"]["verdict"] == "disagrees"
    assert full["problems"][0]["code"] == "alias-disagrees"


def test_audit_of_a_missing_hosted_and_broken_record(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    m1 = model(store, tmp_path, b"weights-1")
    hosted = artifacts.register_hosted(store, "openai:gpt-4-0314", name="old", at=T0,
                                       retires_at=T0 + DAY).artifact
    (d,) = record(store, {"at": T0 + 2 * DAY, "model_digest": m1, "subject": "u-1"},
                  recorded_at=T0 + 2 * DAY)
    (h,) = record(store, {"at": T0 + 2 * DAY, "model_digest": hosted.digest},
                  recorded_at=T0 + 2 * DAY)
    b = _block(store, d)
    store.blobs.delete(m1)
    with store.write() as conn:
        conn.exec_driver_sql(f"UPDATE decisions SET subject = 'u-2' WHERE id = {store.paramstyle}",
                             (d,))
    assert run(args, "audit", d, "--no-cache") == f"""\
decision  {d}
at        2026-01-03T00:00:00Z (recorded 2026-01-03T00:00:00Z)
by        process {_process(store, d)}, subject u-2
PROBLEMS  2
  ! chain block {b} fails verification: decisions do not match the sealed root; this record may have been altered
  ! model {m1}: payload MISSING: the blob is not in the store
alias     none recorded
model     {m1}
          model chat, registered 2026-01-01T00:00:00Z
          payload MISSING: the blob is not in the store
text      none kept
chain     BROKEN: block {b}: decisions do not match the sealed root
"""
    out = run(args, "audit", h)
    assert "  ! model " + hosted.digest + ": payload held by the vendor as openai:gpt-4-0314; " \
        "RETIRED at 2026-01-02T00:00:00Z (past)\n" in out
    assert (f"chain     block {b + 1} verifies and links to block {b} (whole block recomputed "
            "now)\nlinks on  this is the newest block\n") in out


def _block(store, decision_id):
    with store.read() as conn:
        return decisions.get(conn, decision_id).block


def _process(store, decision_id):
    with store.read() as conn:
        return decisions.get(conn, decision_id).process


def test_audit_unknown_or_malformed_id_exits_2(cli_env):
    _led, args = cli_env
    for bad, message in (("0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70",
                          "error: no decision '0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70' in the "
                          "ledger\nhint: find decisions with `modelward decisions search`\n"),
                         ("v1", "error: decision_id: not a decision id: 'v1'\nhint: decision "
                          "ids are UUIDs, e.g. 0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70\n")):
        proc = subprocess.run([sys.executable, "-m", "modelward.cli.app", *args, "audit", bad],
                              capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message)


def test_gc_dry_run_then_gc(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    old = now_us() - 30 * DAY
    keep = model(store, tmp_path, b"keep-me", name="keep", at=old)
    drop = model(store, tmp_path, b"drop-me!", name="drop", version="v0", at=old)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "a.bin").write_bytes(b"a" * 600)
    (ckpt / "b.bin").write_bytes(b"keep-me")  # the same bytes as `keep`: shared
    directory = artifacts.register_path(store, "model", ckpt, name="dir", at=old + 1).artifact
    manifest = store.blobs.size(directory.digest)
    files = artifacts.blob_digests(store, directory)[1:]
    point(store, "chat/v1", keep, old)
    expected = f"""\
{{verb}} {drop}  model drop@v0  8 B
  file           {drop}  8 B
{{verb}} {directory.digest}  model dir  {600 + manifest} B
  manifest       {directory.digest}  {manifest} B
  directory file {files[0]}  600 B
  directory file {files[1]}  7 B, kept: a kept artifact shares it
"""
    dry = run(args, "gc", "--dry-run")
    assert dry == expected.format(verb="would delete") + (
        f"gc --dry-run: would delete 2 payloads ({608 + manifest} B); nothing was deleted; "
        "1 artifact kept\n")
    assert store.blobs.has(drop) and store.blobs.has(directory.digest)
    assert run(args, "gc") == expected.format(verb="deleted") + (
        f"gc deleted 2 payloads ({608 + manifest} B); 1 artifact kept\n")
    assert not store.blobs.has(drop) and not store.blobs.has(files[0])
    assert store.blobs.has(keep)
    assert run(args, "gc") == "nothing to delete; 1 artifact kept\n"
    report = orjson.loads(run(args, "gc", "--dry-run", "--json"))
    assert (report["dry_run"], report["deleted"], report["kept"]) == (True, [], 1)


def test_hold_release_and_holds(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    m = model(store, tmp_path, b"evidence", name="evidence")
    assert run(args, "holds") == "no holds\n"
    assert run(args, "hold", m, "--reason", "legal matter 7", "--actor", "counsel@x.com") == (
        f"hold 1 placed on {m}: legal matter 7\n")
    listed = run(args, "holds")
    (h,) = orjson.loads(run(args, "holds", "--json"))
    assert listed == f"   1  {m}  since {h['at']} by counsel@x.com  (legal matter 7)\n"
    assert run(args, "hold", "--release", "1", "--reason", "closed") == (
        f"hold 1 on {m} released: closed\n")
    assert run(args, "holds") == "no holds\n"
    (h,) = orjson.loads(run(args, "holds", "--all", "--json"))
    assert run(args, "holds", "--all") == (
        f"   1  {m}  since {h['at']} by counsel@x.com  (legal matter 7)  released "
        f"{h['release']['at']} (closed)\n")
    for bad, message in (
            ([m], "error: reason: a reason is required\nhint: say why, e.g. --reason 'legal "
                  "matter 2026-014'\n"),
            (["sha256:" + "0" * 64, "--reason", "x"],
             f"error: no artifact sha256:{'0' * 64} is registered\nhint: hold a digest listed "
             "by `modelward artifacts`\n"),
            (["--reason", "x"], "error: DIGEST: give either DIGEST to place a hold or "
                                "--release ID to end one\n"),
            (["--release", "1", "--reason", "again"],
             f"error: hold_id: hold 1 was already released at {h['release']['at']}\n")):
        proc = subprocess.run([sys.executable, "-m", "modelward.cli.app", *args, "hold", *bad],
                              capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stderr) == (2, message)


def test_retention_text(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    now = now_us()
    base = model(store, tmp_path, b"base", name="base", at=now - 30 * DAY)
    orphan = model(store, tmp_path, b"orphan", name="orphan", at=now - 25 * DAY)
    tuned = model(store, tmp_path, b"tuned", name="tuned", version="v2", kind="adapter",
                  parents=[base], at=now - 20 * DAY)
    point(store, "chat/v1", tuned, now - 10 * DAY)
    record(store, {"at": now - DAY, "model_digest": tuned})
    first, rest = run(args, "retention").split("\n", 1)
    # the window starts 400 days before the moment the command ran
    assert re.fullmatch(r"retention 400d: decisions since (\S+) keep the artifacts they name; "
                        r"gc grace 7d", first)
    since = parse_time(first.split()[4])
    assert 0 <= since - (now - 400 * DAY) < 60_000_000
    assert rest == f"""\
{base}  model base
    kept by  lineage of {tuned}
    payload  present, size matches (quick: not rehashed)
{orphan}  model orphan
    kept by  NOTHING: gc deletes its payload
    payload  present, size matches (quick: not rehashed)
{tuned}  adapter tuned@v2
    kept by  1 decision (last {iso(now - DAY)}), alias chat/v1
    payload  present, size matches (quick: not rehashed)
3 artifacts: 2 kept, 1 not kept
"""
    verified = run(args, "retention", "--verify")
    assert verified.count("    payload  present, verified (rehashed now)\n") == 3
    report = orjson.loads(run(args, "retention", "--json"))
    assert [a["payload"]["how"] for a in report["artifacts"]] == ["cached"] * 3
    assert [(a["name"], a["kept_by"]) for a in report["artifacts"]] == [
        ("base", ["lineage"]), ("orphan", []), ("tuned", ["decisions", "alias"])]


def test_audit_with_an_exported_head(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    m1 = model(store, tmp_path, b"weights-1")
    (d,) = record(store, {"at": T0 + DAY, "model_digest": m1})
    (tmp_path / "head.json").write_text(run(args, "chain", "head"))
    out = run(args, "audit", d, "--head", str(tmp_path / "head.json"))
    b = _block(store, d)
    assert f"head      the exported head (block {b}) covers this record\n" in out
    (later,) = record(store, {"at": T0 + 2 * DAY, "model_digest": m1})
    out = run(args, "audit", later, "--head", str(tmp_path / "head.json"))
    assert "  ! the exported head does not vouch for this record: the exported head " \
        f"(block {b}) was exported before block {b + 1}: it cannot vouch for this decision\n" in out
    assert f"head      DOES NOT cover this record: the exported head (block {b})" in out
    result = runner.invoke(app, [*args, "audit", d, "--head", str(tmp_path / "none.json")])
    assert isinstance(result.exception, ValidationError)
    assert result.exception.field == "--head"
    assert "cannot read an exported head from " in result.exception.message


def test_retention_retire_drops_old_blocks_and_verify_calls_them_retired(cli_env, tmp_path):
    """`retention --retire`: whole blocks past the window go (a PostgreSQL month as a
    partition), a block naming a held artifact stays, and verify says retired, not broken."""
    led, args = cli_env
    store = led.store
    now = now_us()
    kept = model(store, tmp_path, b"held", name="held", at=now - 600 * DAY)
    other = model(store, tmp_path, b"other", name="other", at=now - 600 * DAY)
    old = now - 520 * DAY
    record(store, {"at": old, "model_digest": other}, {"at": old + 1, "model_digest": other})
    (held_id,) = record(store, {"at": old + 40 * DAY, "model_digest": kept})
    record(store, {"at": now - DAY, "model_digest": other})
    run(args, "hold", kept, "--reason", "legal matter 2026-014")
    first = run(args, "retention", "--retire").split("\n", 1)[0]
    method = ("1 partition dropped (decisions_p" if store.dialect == "postgresql"
              else "1 block by row delete")
    assert first.startswith("retired 1 block (2 decisions before ") and method in first
    assert ", 1 block retired by retention, head " in run(args, "verify")
    report = orjson.loads(run(args, "verify", "--json"))
    assert (report["ok"], report["retired_blocks"], report["decisions"]) == (True, 1, 2)
    with store.read() as conn:
        assert decisions.get(conn, held_id).model_digest == kept
    again = orjson.loads(run(args, "retention", "--retire", "--json"))["retired"]
    assert (again["blocks"], again["decisions"]) == (0, 0)
    assert run(args, "retention", "--retire").startswith("retired nothing: no block holds "
                                                         "only decisions before ")
