"""The pieces the dashboard's browser tests share: Debian's Chromium driven by Playwright
(never a downloaded browser), a real ``modelward serve`` on a free port, and one-time
log-in links made by ``modelward login-url``.

Under CI (``CI=true``) a missing /usr/bin/chromium fails the tests; locally it skips them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("MODELWARD_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"


def require_program(path: Path, install: str, tests: str) -> None:
    """Skip unless the Debian program at ``path`` runs; under CI (which installs it) fail."""
    if path.is_file() and os.access(path, os.X_OK):
        return
    message = f"{path} is missing: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; {tests} are required under CI")
    pytest.skip(message)


def require_chromium() -> None:
    require_program(CHROMIUM, "install Debian's chromium (`make browser`, or "
                    "`apt-get install -y chromium`)", "the browser tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def modelward(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelward.cli.app", "--home", str(home),
                           *args], capture_output=True, text=True, timeout=timeout,
                          env=_env(home), cwd=home)


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return {**env, "MODELWARD_HOME": str(home), "PYTHONPATH": path}  # demo/ imports


class Server:
    """``modelward serve`` in a subprocess on 127.0.0.1, waited for through /healthz."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(home.parent / f"serve-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelward.cli.app", "--home", str(home), "serve",
             "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT,
            env=_env(home), cwd=home)  # the ledger's modelward.toml applies, as for `check`
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("modelward serve did not start: "
                                   + (home.parent / f"serve-{self.port}.log").read_text())
            time.sleep(0.1)

    def login_url(self, *, role: str = "reader", email: str | None = None) -> str:
        args = ["login-url", "--url", self.url, "--role", role]
        proc = modelward(self.home, *args, *(["--email", email] if email else []))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def shot(page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/screenshots/ (git-ignored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
