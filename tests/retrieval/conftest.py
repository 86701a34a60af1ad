"""Fixtures for the retrieval tests: an embedding server and a CLI runner over real
databases (SQLite file and PostgreSQL: the CLI opens its own connection each call)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from modelward.cli.app import main

from ..conftest import database_url
from .embedders import EmbeddingServer


@pytest.fixture
def server():
    srv = EmbeddingServer()
    yield srv
    srv.close()


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, home, url):
        self.home, self.url = home, url

    def __call__(self, *args) -> Result:
        argv = ["--home", str(self.home), "--database-url", self.url, *map(str, args)]
        with CliRunner().isolation() as (stdout, stderr, _):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            return Result(code, stdout.getvalue().decode(), stderr.getvalue().decode())

    def ok(self, *args) -> str:
        res = self(*args)
        assert (res.code, res.err) == (0, ""), res
        return res.out


@pytest.fixture(params=["sqlite-file", "postgres"])
def cli(request, tmp_path):
    url = database_url(request.param, tmp_path, request)
    c = Cli(tmp_path / "home", url)
    c.ok("init")
    return c
