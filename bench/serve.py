"""Decisions through the HTTP API: 8 concurrent clients on loopback vs the in-process recorder.

A real ``modelward serve`` (uvicorn) in a subprocess on 127.0.0.1; client threads, each with
its own ``httpx.Client`` (keep-alive), POST batches of ``--batch`` decisions (client-made
ids, realistic fields, bodies serialised before the clock starts) to /api/v1/decisions.
Figures (medians of ``--repeats`` runs, each into a fresh ledger):

* ``api_decisions_per_s`` — decisions acknowledged per second of wall time, first request
  sent to last response (target >= 20,000);
* ``api_request_p50_ms`` / ``api_request_p99_ms`` — one batch request's latency;
* ``recorder_decisions_per_s`` — the same decisions through ``ledger.record()`` + ``flush()``
  in this process, into the same kind of database;
* ``api_vs_recorder`` — the two throughputs divided.

Every run checks the ledger holds exactly the decisions sent and that the chain verifies.
``--database-url postgresql+psycopg://…`` measures PostgreSQL (a fresh schema per run is
the caller's business: the decisions table must start empty).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

import _common as c

BENCH = "serve"
SEGMENTS = ({"tier": "pro", "region": "eu", "lang": "en"},
            {"tier": "free", "region": "us", "lang": "en"},
            {"tier": "enterprise", "region": "apac", "lang": "ja"})


def _digest(i: int, salt: str) -> str:
    return "sha256:" + hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()


def _prepare(home: Path, url: str | None):
    """A fresh ledger with a model and a prompt behind aliases; (ledger, uses, writer secret)."""
    import modelward
    from modelward.ledger import aliases, artifacts, tokens

    if home.exists():
        shutil.rmtree(home)
    ledger = modelward.open(str(home), database_url=url or f"sqlite:///{home / 'ledger.db'}")
    store = ledger.store
    model = artifacts.register_bytes(store, "model", b"weights-of-chat-v1", name="chat").artifact
    prompt = artifacts.register_bytes(store, "prompt", b"You are a support agent. {{q}}",
                                      name="support").artifact
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", model.digest)
        aliases.set_alias(conn, "prompt/support@production", prompt.digest)
        _tok, secret = tokens.create(conn, role="writer", name="bench",
                                     email="bench@example.com")
    uses = [ledger.resolve("chat/v1"), ledger.resolve("prompt/support@production")]
    return ledger, uses, secret


def decisions(n: int, model: str, prompt: str) -> list[dict]:
    from modelward.ids import uuid7

    ins = [_digest(i, "in") for i in range(1024)]
    outs = [_digest(i, "out") for i in range(1024)]
    return [{"id": uuid7(), "alias": "chat/v1", "model_digest": model, "prompt_digest": prompt,
             "subject": f"u-{i % 5000:05d}", "input_digest": ins[i & 1023],
             "output_digest": outs[(i * 7) & 1023], "segments": SEGMENTS[i % 3],
             "gate": {"threshold": 0.4, "candidates": 20, "passed": 7 + i % 5}}
            for i in range(n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, url: str | None, extra: list[str] | None = None,
                 log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``modelward serve`` in a subprocess; returns it and its base URL once /healthz answers.
    ``extra``: more ``serve`` options; ``log``: a file for its stderr (a long run would fill
    a pipe nobody reads)."""
    import httpx

    port = _free_port()
    env = {**os.environ, "MODELWARD_HOME": str(home),
           "MODELWARD_DATABASE_URL": url or f"sqlite:///{home / 'ledger.db'}",
           "PYTHONPATH": str(c.SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from modelward.cli.app import main; main()",
         "serve", "--host", "127.0.0.1", "--port", str(port), *(extra or [])],
        env=env, stdout=subprocess.DEVNULL,
        stderr=open(log, "wb") if log else subprocess.PIPE)  # noqa: SIM115 (the child's)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text() if log else proc.stderr.read().decode()
            raise SystemExit(f"serve bench: the server exited: {said}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("serve bench: the server did not answer /healthz within 30 s")


def run_api(base: str, secret: str, bodies: list[bytes], clients: int):
    """(seconds, per-request latencies in ms) for every body POSTed by ``clients`` threads."""
    import httpx

    work: queue.SimpleQueue = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    start = threading.Barrier(clients + 1)

    def client() -> None:
        mine = []
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            http.get("/healthz")  # connect before the clock starts
            start.wait()
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    break
                t0 = time.perf_counter()
                resp = http.post("/api/v1/decisions", content=body)
                mine.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 200:
                    with lock:
                        errors.append(f"{resp.status_code}: {resp.text[:300]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"serve bench: {len(errors)} requests failed, e.g. {errors[0]}")
    return seconds, sorted(latencies)


def run_recorder(ledger, uses, items: list[dict]) -> float:
    """Seconds for the same decisions through ``record()`` + ``flush()`` in this process."""
    record = ledger.record
    ledger.recorder  # start the flush thread outside the timed region  # noqa: B018
    t0 = time.perf_counter()
    for d in items:
        record(uses=uses, subject=d["subject"], input_digest=d["input_digest"],
               output_digest=d["output_digest"], segments=d["segments"], gate=d["gate"])
    ledger.flush()
    return time.perf_counter() - t0


def _check(ledger, expected: int, what: str) -> None:
    from modelward.ledger import chain

    with ledger.store.read() as conn:
        got = conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar()
        ok = chain.verify(conn).ok
    if got != expected or not ok:
        raise SystemExit(f"serve bench ({what}): {got} decisions of {expected}, chain ok={ok}")


def one_run(args, i: int) -> dict:
    root = c.out_dir(BENCH)
    ledger, uses, secret = _prepare(root / f"api-{i}", args.database_url)
    items = decisions(args.n, uses[0].digest, uses[1].digest)
    bodies = [orjson.dumps(items[j:j + args.batch]) for j in range(0, len(items), args.batch)]
    proc, base = start_server(root / f"api-{i}", args.database_url)
    try:
        seconds, lat = run_api(base, secret, bodies, args.clients)
    finally:
        proc.terminate()
        proc.wait(10)
    _check(ledger, args.n, "api")
    ledger.close()
    rec_ledger, rec_uses, _secret = _prepare(root / f"recorder-{i}", args.database_url)
    rec_seconds = run_recorder(rec_ledger, rec_uses, items)
    _check(rec_ledger, args.n, "recorder")
    rec_ledger.close()
    return {"api": args.n / seconds, "p50": c.percentile(lat, 50), "p99": c.percentile(lat, 99),
            "recorder": args.n / rec_seconds}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="decisions per run")
    ap.add_argument("--batch", type=int, default=500, help="decisions per request")
    ap.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--database-url", help="default: a fresh SQLite file per run")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.repeats = 20_000, 1
    if args.database_url and args.repeats > 1:
        ap.error("--database-url needs --repeats 1 (each run must start from an empty ledger)")
    c.CONTEXT.update(n=args.n, batch=args.batch, clients=args.clients,
                     backend="postgresql" if args.database_url else "sqlite")
    runs = []
    for i in range(args.repeats):
        c.note(f"run {i + 1}/{args.repeats}: {args.n:,} decisions, {args.clients} clients, "
               f"batches of {args.batch}")
        runs.append(one_run(args, i))
    for key, figure, unit in (("api", "api_decisions_per_s", "1/s"),
                              ("p50", "api_request_p50_ms", "ms"),
                              ("p99", "api_request_p99_ms", "ms"),
                              ("recorder", "recorder_decisions_per_s", "1/s")):
        values = [r[key] for r in runs]
        c.emit(BENCH, figure, c.median(values), unit, **c.spread(values))
    c.emit(BENCH, "api_vs_recorder", c.median([r["api"] / r["recorder"] for r in runs]), "x")


if __name__ == "__main__":
    main()
