"""``modelward archive`` end to end: archive, verify --full, audit an archived decision."""

from __future__ import annotations

from .test_ledger_cli import cli, decision, jsonl, ready  # noqa: F401 - fixtures


def test_archive_verify_and_audit(ready, tmp_path):  # noqa: F811
    (tmp_path / "d.jsonl").write_bytes(jsonl(*(decision(i) for i in range(4))))
    ready.ok("decisions", "import", tmp_path / "d.jsonl")
    dest = tmp_path / "archive"
    dry = ready.ok("archive", "--older-than", "90d", "--to", dest, "--dry-run")
    assert dry.startswith("would archive 1 block (4 decisions before ")
    assert not dest.exists()
    out = ready.ok("archive", "--older-than", "90d", "--to", dest).splitlines()
    assert out[0].startswith("archived blocks 1-1 (4 decisions, ")
    assert f"to file://{dest}/decisions/month=" in out[0] and "B/decision" in out[0]
    assert out[0].split("; ")[0].endswith(".parquet")
    assert out[1].startswith("4 decisions archived before ")
    assert ready.json("archive", "--older-than", "90d", "--to", dest)["files"] == []
    assert "1 block archived to Parquet (files checked)" in ready.ok("verify", "--full")
    report = ready.json("audit", decision(2)["id"], "--quick")
    assert report["decision"]["id"] == decision(2)["id"]
    assert report["chain"]["verifies"] is True
    assert report["chain"]["how"].startswith(f"archive file://{dest}/decisions/month=")
    for blob in (dest / "decisions").rglob("*.parquet"):
        if blob.is_file():
            blob.unlink()
    err = ready.fails("verify", "--full", code=1)
    assert "chain BROKEN at block 1: archive file file://" in err and "is missing" in err


def test_max_file_decisions_splits_files(ready, tmp_path):  # noqa: F811
    (tmp_path / "d.jsonl").write_bytes(jsonl(*(decision(i) for i in range(4))))
    ready.ok("decisions", "import", tmp_path / "d.jsonl")
    ready.fails("archive", "--older-than", "90d", "--to", tmp_path / "a",
                "--max-file-decisions", "0", code=2)
    got = ready.json("archive", "--older-than", "90d", "--to", tmp_path / "a",
                     "--max-file-decisions", "1")
    assert got["decisions"] == 4 and got["files"][0]["row_groups"] == 1
    assert "/decisions/month=" in got["files"][0]["file"]
