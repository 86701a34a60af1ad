"""Fixtures for the retrieval tests: an embedding server and a CLI runner over real
databases (SQLite file and PostgreSQL: the CLI opens its own connection each call)."""

from __future__ import annotations

import pytest

from ..cli.runner import Cli
from ..conftest import database_url
from .embedders import EmbeddingServer


@pytest.fixture
def server():
    srv = EmbeddingServer()
    yield srv
    srv.close()


@pytest.fixture(params=["sqlite-file", "postgres"])
def cli(request, tmp_path):
    url = database_url(request.param, tmp_path, request)
    c = Cli(tmp_path / "home", url)
    c.ok("init")
    return c
