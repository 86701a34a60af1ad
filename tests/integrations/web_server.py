"""The modelward web app served by uvicorn in a thread on 127.0.0.1 (random port)."""

from __future__ import annotations

import threading
import time

import uvicorn

from modelward.ledger import tokens as ledger_tokens
from modelward.web.app import create_app


class WebServer:
    def __init__(self, ledger) -> None:
        self.app = create_app(ledger.settings, store=ledger.store)
        with ledger.store.write() as conn:
            _, self.writer = ledger_tokens.create(conn, role="writer", name="otel",
                                                   email="otel@example.com")
            _, self.reader = ledger_tokens.create(conn, role="reader", name="read")
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
