"""``modelward blobs migrate`` and ``modelward init`` with an object store, as a team would
move a local ledger's payloads to a bucket (a real S3-compatible server over HTTP)."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from modelward.cli.app import app


def mw(*args, **env):
    return CliRunner().invoke(app, list(args), env=env or None)


def test_migrate_a_local_store_to_a_bucket_then_use_it(tmp_path, s3_url, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MODELWARD_HOME", str(home))
    assert mw("init").exit_code == 0
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "w.bin").write_bytes(b"weights" * 1000)
    reg = mw("register", "model", str(ckpt), "--name", "chat")
    assert reg.exit_code == 0, reg.output
    result = mw("blobs", "migrate", "--to", s3_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{home / 'blobs'} -> {s3_url}"
    assert lines[1] == ("blobs 2: copied 2 (7,078 bytes), already present 0, verified in the "
                        "target 2")
    assert lines[-1] == "ok: every blob verified in the target"
    again = orjson.loads(mw("blobs", "migrate", "--to", s3_url, "--json").stdout)
    assert (again["copied"], again["already_present"], again["ok"]) == (0, 2, True)
    # the team switches to the bucket: payloads are found, verified, from there
    monkeypatch.setenv("MODELWARD_BLOB_URL", s3_url)
    init = mw("init")
    assert init.exit_code == 0 and f"blobs in {s3_url}" not in init.stdout  # up to date
    assert not (tmp_path / "s3:").exists()  # nothing local was created for the URL
    listed = mw("retention", "--verify", "--json")
    assert listed.exit_code == 0, listed.output
    same = mw("blobs", "migrate", "--to", s3_url)
    assert "is the store already in use" in str(same.exception)  # exit 2 through main()
