"""Helpers of the registry tests: artifacts, aliases and decisions at chosen times."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelward.digest import of_bytes
from modelward.ledger import aliases, artifacts, decisions

DAY = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def model(store, tmp_path: Path, content: bytes, *, name: str = "chat", version=None,
          at: int = T0, parents=(), kind: str = "model") -> str:
    path = tmp_path / f"{kind}-{of_bytes(content)[7:23]}.bin"
    path.write_bytes(content)
    return artifacts.register_path(store, kind, path, name=name, version=version, at=at,
                                   parents=parents).artifact.digest


def point(store, alias: str, digest: str, at: int, reason: str | None = None) -> None:
    with store.write() as conn:
        aliases.set_alias(conn, alias, digest, at=at, reason=reason)


def record(store, *ds: dict, recorded_at: int = T0 + 400 * DAY) -> list[str]:
    """Append decisions as one chain block; returns their ids."""
    rows, payloads = [], []
    for d in ds:
        row, payload = decisions.normalize(d)
        rows.append(row)
        if payload:
            payloads.append(payload)
    decisions.append(store, rows, payloads, recorded_at=recorded_at)
    return [r[0] for r in rows]


@pytest.fixture
def cli_env(cli_ledger):
    """The shared command-test ledger as (ledger, the CLI's leading arguments)."""
    return cli_ledger.ledger, cli_ledger.args
