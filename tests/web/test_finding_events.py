"""GET /api/v1/findings/events against a real ``modelward serve``: a streaming client sees
``finding.opened`` when a ``modelward check`` records a run, ``finding.acknowledged`` when
somebody acks it and ``finding.resolved`` when a later run clears it; reconnecting with
``Last-Event-ID`` resumes with nothing lost and nothing repeated; a reader token suffices,
none is refused."""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import pytest

import modelward
from modelward.ledger import artifacts
from modelward.ledger import tokens as ledger_tokens

from ..alerts.test_alerts import GHOST, GHOST_DIGEST
from .browser import Server
from .browser import modelward as cli

PATH = "/api/v1/findings/events"


class Stream:
    """A streaming SSE client in a thread: ``events`` fills as they arrive."""

    def __init__(self, url: str, token: str, last_id: str | None = None) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        self.conn.request("GET", PATH, headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type").startswith("text/event-stream")
        self.events: list[dict] = []
        self.comments: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event: dict = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "event" in event:
                        self.events.append(event)
                    event = {}
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(": ")
                    event[name] = json.loads(value) if name == "data" else value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed
            return

    def wait(self, n: int, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"saw {self.events}, wanted {n} events")
            time.sleep(0.05)
        return self.events

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def served(tmp_path):
    home = tmp_path / "home"
    led = modelward.open(str(home))
    with led.store.write() as conn:
        reader = ledger_tokens.create(conn, role="reader", name="r")[1]
    led.record(alias="chat/v1", model_digest=GHOST_DIGEST, subject="u1")
    led.close()
    server = Server(home)
    yield home, server, reader
    server.stop()


def test_events_stream_as_runs_record_them_and_resume_from_the_last_id(served):
    home, server, reader = served
    live = Stream(server.url, reader)
    try:
        time.sleep(0.5)
        assert cli(home, "check", "--select", "MW101").returncode == 1
        [opened] = live.wait(1)
        assert opened["event"] == "finding.opened"
        assert opened["data"]["code"] == "MW101" and opened["data"]["subject"] == GHOST_DIGEST
        key = opened["data"]["key"]
        assert cli(home, "findings", "ack", key, "--reason", "on it", "--as",
                   "ana@example.com").returncode == 0
        acked = live.wait(2)[1]
        assert acked["event"] == "finding.acknowledged"
        assert (acked["data"]["key"], acked["data"]["actor"]) == (key, "ana@example.com")
    finally:
        live.close()

    # while nobody listens: the artifact is registered, the next run resolves the finding
    led = modelward.open(str(home))
    artifacts.register_bytes(led.store, "model", GHOST, name="ghost")
    led.close()
    assert cli(home, "check", "--select", "MW101").returncode == 0

    resumed = Stream(server.url, reader, last_id=opened["id"])
    try:
        got = resumed.wait(2)
        time.sleep(1.5)  # a poll or two more: nothing repeated
        assert [e["event"] for e in resumed.events] == ["finding.acknowledged",
                                                        "finding.resolved"]
        assert got[0]["id"] == acked["id"] and got[1]["data"]["key"] == key
        ids = [tuple(map(int, e["id"].split("-"))) for e in [opened, *got]]
        assert ids == sorted(set(ids))  # monotonic, none twice
    finally:
        resumed.close()
    caught_up = Stream(server.url, reader, last_id=got[1]["id"])
    try:
        time.sleep(2.5)
        assert caught_up.events == [] and caught_up.comments  # the opening comment only
    finally:
        caught_up.close()


def test_the_stream_needs_a_token(served):
    _home, server, _reader = served
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", PATH)
    resp = conn.getresponse()
    assert resp.status == 401 and json.loads(resp.read())["error"]["code"] == "unauthorized"
    conn.close()
