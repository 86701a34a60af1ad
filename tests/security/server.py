"""A real ``modelward serve`` to attack, and the instruments the attacks are judged by:

* :class:`Target` starts the server in a subprocess on a free port over a SQLite file ledger
  seeded with tokens and a promotion request (whose evidence can be opened);
* :class:`Watch` polls ``/healthz`` from a thread throughout an attack (every answer must
  come within 1 s) and reads the server's peak resident memory (``VmHWM``, reset before the
  attack through ``/proc/<pid>/clear_refs``);
* :func:`raw_request` sends a request over a plain socket, its body from a generator (so
  the test holds one chunk at a time), and stops sending as soon as the server answers.
"""

from __future__ import annotations

import http.client
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import modelward
from modelward.ledger import tokens as ledger_tokens

from ..web.browser import _env, free_port
from ..web.page_world import promotion_request

MIB = 1 << 20
# Peak resident memory the server may reach during any attack here. At rest it holds
# about 120-160 MiB (Python, FastAPI, SQLAlchemy, NumPy); before the limits a 300 MB body
# alone took it past 1.6 GB.
RSS_BOUND = 400 * MIB


@dataclass
class Target:
    home: Path
    env: dict = field(default_factory=dict)

    def start(self) -> Target:
        led = modelward.open(str(self.home))
        with led.store.write() as conn:
            self.secrets = {role: ledger_tokens.create(conn, role=role, name=role,
                                                       email=f"{role}@example.com")[1]
                            for role in ("reader", "writer", "approver", "admin")}
        self.world = promotion_request(led.store)
        led.close()
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.log = open(self.home.parent / f"serve-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelward.cli.app", "--home", str(self.home), "serve",
             "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT,
            env={**_env(self.home), **self.env}, cwd=self.home)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.request("GET", "/healthz").status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("modelward serve did not start: "
                                   + (self.home.parent / f"serve-{self.port}.log").read_text())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def bearer(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.secrets[role]}"}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 10) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                          resp.read(), 0)
        finally:
            conn.close()

    def watch(self) -> Watch:
        return Watch(self)


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    sent: int  # body bytes the client managed to send before the answer

    def json(self):
        import json

        return json.loads(self.body)


class Watch:
    """``with target.watch() as w: attack()`` — then ``w.slowest`` (s), ``w.failures``,
    ``w.peak_rss`` (bytes) and ``w.polls``."""

    def __init__(self, target: Target) -> None:
        self.target, self.slowest, self.failures, self.polls = target, 0.0, [], 0
        self._stop = threading.Event()
        self.peak_rss = 0

    def _status(self, key: str) -> int:
        for line in Path(f"/proc/{self.target.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {key} in /proc/{self.target.proc.pid}/status")

    def _poll(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = self.target.request("GET", "/healthz", timeout=1).status
                if status != 200:
                    self.failures.append(f"/healthz answered {status}")
            except OSError as exc:
                self.failures.append(f"/healthz: {exc!r}")
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.polls += 1
            self._stop.wait(0.05)

    def __enter__(self) -> Watch:
        Path(f"/proc/{self.target.proc.pid}/clear_refs").write_text("5")  # resets VmHWM
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.2)  # one more poll after the attack
        self._stop.set()
        self._thread.join(5)
        self.peak_rss = self._status("VmHWM")

    def assert_healthy(self) -> None:
        assert self.failures == [], self.failures
        assert self.slowest < 1.0, f"/healthz took {self.slowest:.2f} s during the attack"
        assert self.polls >= 2
        assert self.peak_rss < RSS_BOUND, f"peak RSS {self.peak_rss / MIB:.0f} MiB"


def zeros(total: int, chunk: int = MIB) -> Iterator[bytes]:
    block = bytes(chunk)
    for _ in range(total // chunk):
        yield block


def raw_request(port: int, method: str, path: str, headers: dict,
                body: Iterable[bytes] = (), *, chunked: bool = False,
                timeout: float = 20) -> Answer:
    """Send ``body`` piece by piece (chunked transfer encoding when ``chunked``) and stop at
    the server's first answer, which is returned with how many body bytes went out."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent = 0
        try:
            for piece in body:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered (or closed): stop sending
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(),
                      sent)
    finally:
        sock.close()


def multipart(fields: dict[str, str], file_size: int, boundary: str = "mwbound") -> tuple[
        dict, int, Iterator[bytes]]:
    """(headers, length, body pieces) of a multipart form with a ``file`` of zeros."""
    head = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                    f"{v}\r\n".encode() for k, v in fields.items())
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"weights.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
             ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def pieces():
        yield head
        yield from zeros(file_size)
        yield tail
    return ({"Content-Type": f"multipart/form-data; boundary={boundary}"},
            len(head) + file_size + len(tail), pieces())
