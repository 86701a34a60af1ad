"""A real MLflow tracking server (``mlflow server``) as a subprocess on a free port, with a
SQLite backend store and local artifacts, set up to deliver webhooks to 127.0.0.1 in order
(one delivery worker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.s3server import free_port


class MlflowServer:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> MlflowServer:
        env = {**os.environ,
               # webhooks to this machine over plain HTTP, delivered one at a time (in order)
               "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
               "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
               "MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS": "1",
               "MLFLOW_WEBHOOK_CACHE_TTL": "0"}
        self.log = open(self.root / "mlflow-server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--default-artifact-root", str(self.root / "artifacts")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        deadline = time.monotonic() + 240  # a loaded machine starts it slowly
        while True:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("mlflow server did not start: "
                                       + (self.root / "mlflow-server.log").read_text()[-2000:]
                                       ) from None
                time.sleep(0.25)

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
