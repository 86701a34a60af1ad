"""``modelward serve --workers 2`` on PostgreSQL: two worker processes, each building its
own app from the environment (the import-string factory), both applying the limits, and
every write of concurrent clients recorded once."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import subprocess
import sys
import time

import psutil
import pytest

import modelward
from modelward.ids import uuid7
from modelward.ledger import decisions
from modelward.ledger import tokens as ledger_tokens

from .browser import _env, free_port

pytestmark = pytest.mark.timeout(120)


def _call(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_two_workers_on_postgresql(pg_url, tmp_path):
    home = tmp_path / "home"
    led = modelward.open(str(home), database_url=pg_url)
    with led.store.write() as conn:
        _tok, secret = ledger_tokens.create(conn, role="writer", name="w",
                                            email="writer@example.com")
    led.close()
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelward.cli.app", "--home", str(home), "serve",
             "--port", str(port), "--workers", "2"], stdout=out, stderr=subprocess.STDOUT,
            env={**_env(home), "MODELWARD_DATABASE_URL": pg_url}, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _call(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = [p for p in children if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2, [p.cmdline() for p in children]
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        ids = [uuid7() for _ in range(40)]

        def post(i):
            body = json.dumps([{"id": ids[i], "subject": f"s{i}"}])
            return _call(port, "POST", "/api/v1/decisions", body, headers)[0]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(post, range(len(ids)))) == {200}
        # every worker applies the limits: a body without a token is refused unread
        for _ in range(4):
            assert _call(port, "POST", "/api/v1/decisions", b"[]" * 10,
                         {"Content-Type": "application/json"})[0] == 401
        led = modelward.open(str(home), database_url=pg_url)
        with led.store.read() as conn:
            assert decisions.count(conn) == len(ids)
        led.close()
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode in (0, -15), log.read_text()
