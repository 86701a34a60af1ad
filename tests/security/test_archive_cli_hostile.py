"""Hostile values for ``modelward archive``: each is refused with exit 2 and a clear
message, and nothing is written or deleted."""

from __future__ import annotations

import pytest

from tests.cli.test_ledger_cli import cli, decision, jsonl, ready  # noqa: F401 - fixtures


@pytest.mark.parametrize("age, to, says", [
    ("ninety", "DIR", "not a duration"),
    ("-90d", "DIR", "not a duration"),
    ("0d", "DIR", "--older-than must be positive"),
    ("1e99d", "DIR", "not a duration"),
    ("90d", "", "--to needs a blob store URL"),
    ("90d", "http://169.254.169.254/latest", "not a supported store scheme"),
    ("90d", "ftp://x/y", "not a supported store scheme"),
    ("90d", "s3://bucket/x?X-Amz-Credential=AKIA", "query or fragment"),
    ("90d", "s3://AKIA:secret@bucket/x", "carries credentials"),
    ("90d", "DIR\x1b[2J", "control characters"),
    ("90d", "s3://" + "b" * 1000, "too long"),
])
def test_hostile_archive_arguments(ready, tmp_path, age, to, says):  # noqa: F811
    (tmp_path / "d.jsonl").write_bytes(jsonl(*(decision(i) for i in range(3))))
    ready.ok("decisions", "import", tmp_path / "d.jsonl")
    to = to.replace("DIR", str(tmp_path / "arch"))
    err = ready.fails("archive", "--older-than", age, "--to", to, code=2)
    assert err.startswith("error: ") and says in err, err
    assert "\x1b" not in err
    assert not (tmp_path / "arch").exists()
    assert ready.json("decisions", "search", "--subject", "u0")  # nothing was dropped
