"""The end of ``make demo``: serve the demo ledger's dashboard and print a one-time log-in
URL. Only on a terminal, and never when MODELWARD_DEMO_NO_SERVE is set, so tests and CI
never block on it."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

PORT = 8765


def wanted() -> bool:
    return sys.stdout.isatty() and not os.environ.get("MODELWARD_DEMO_NO_SERVE")


def _port() -> int:
    """8765 (or MODELWARD_DEMO_PORT) when free, else any free port."""
    port = int(os.environ.get("MODELWARD_DEMO_PORT", PORT))
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(path: Path) -> int:
    """Print a one-time log-in link to the demo ledger's dashboard and serve it until ^C."""
    from modelward.cli.login import login_link
    from modelward.ledger.engine import Store
    from modelward.settings import Settings

    port = _port()
    store = Store(Settings({"home": str(path), "database_url": f"sqlite:///{path / 'ledger.db'}",
                            "blob_url": str(path / "blobs")}))
    try:
        link, _expires = login_link(store, f"http://127.0.0.1:{port}", role="admin",
                                    email="demo@acme.example", ttl="1h")
    finally:
        store.dispose()
    print("\n=== The dashboard  (Ctrl-C to stop; MODELWARD_DEMO_NO_SERVE=1 skips this)")
    print(f"  open {link}")
    print("  (a one-time link, valid for an hour; `modelward login-url` makes another)")
    from demo.report import activate_hint, cli_env

    activate = activate_hint()
    if activate:
        print(f"  the CLI, in another terminal: `{activate}`, then `modelward --help`")
    sys.stdout.flush()

    # Become the server (exec, not a child): Ctrl-C or a SIGTERM reaches uvicorn itself and
    # nothing is left running. In the ledger's directory, so its modelward.toml applies as
    # it does for `modelward check`.
    os.chdir(path)
    os.execve(sys.executable, [sys.executable, "-m", "modelward.cli.app", "serve", "--port",
                               str(port)], cli_env(path))
