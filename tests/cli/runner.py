"""Running ``modelward`` in-process as the console script does, for command tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from click.testing import CliRunner

from modelward.cli.app import main
from modelward.ledger.engine import Store
from modelward.settings import Settings


@dataclass
class Result:
    code: int
    out: str
    err: str


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Cli:
    """Runs ``modelward ARGS`` in-process through ``main`` (the console script's entry point,
    where ModelwardError becomes exit 2), capturing stdout and stderr apart."""

    def __init__(self, home, url):
        self.home, self.url = home, url
        store = Store(Settings({"home": str(home), "database_url": url}, env={}))
        self.display_url, self.head = store.display_url, store.head_revision()
        store.dispose()

    def __call__(self, *args, input=None) -> Result:
        runner = CliRunner()
        argv = ["--home", str(self.home), "--database-url", self.url, *map(str, args)]
        with runner.isolation(input=input) as (stdout, stderr, _output):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            return Result(code, stdout.getvalue().decode(), stderr.getvalue().decode())

    def ok(self, *args, input=None) -> str:
        res = self(*args, input=input)
        assert (res.code, res.err) == (0, ""), res
        return res.out

    def fails(self, *args, input=None, code=2) -> str:
        res = self(*args, input=input)
        assert res.code == code, res
        return res.err

    def json(self, *args, input=None):
        return orjson.loads(self.ok(*args, "--json", input=input))

    def sql(self, statement: str, params=()):
        store = Store(Settings({"home": str(self.home), "database_url": self.url}, env={}))
        try:
            with store.write() as conn:
                conn.exec_driver_sql(statement.replace("?", store.paramstyle), params)
        finally:
            store.dispose()
