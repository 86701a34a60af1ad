"""A local HTTP receiver the alert tests post to: it records every request and answers
with the status codes queued for its path (200 once the queue is empty)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    requests: list[Received] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                queued = receiver.statuses.get(self.path)
                status = queued.pop(0) if queued else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
