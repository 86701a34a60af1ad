"""Time to detect: a bad decision or event under steady API ingest, to the open finding
and the delivered alert.

A real ``modelward serve --watch`` runs in a subprocess, with a signed webhook channel
pointing at a receiver in this process. Client threads POST decisions to
/api/v1/decisions at ``--rate`` per second, paced, from start to end. Then each incident is
planted in turn:

* ``MW104`` — the hosted model's decisions start reporting another ``vendor_model_id``;
  t0 = the first such batch sent;
* ``MW105`` — ``rank/v1`` moves to a new model, every process follows but ``pod-stale``;
  t0 = move + grace (``[check.MW105] grace``, ``--grace``), its first stale decision;
* ``MW301`` — ``prompt/support@production`` moves to a prompt no eval scored and the
  stream follows; t0 = the first batch with the new prompt;
* ``MW501`` — the embedder behind ``embed/search`` starts answering in a rotated basis;
  this process fingerprints it every ``--probe-every`` seconds (``fingerprint run``'s own
  function), so t0 = the embedder change and the wait for the next probe is counted.

Figures per incident: ``<code>_open_s`` (t0 to the finding listed by
``GET /api/v1/findings?state=open``, polled every 0.25 s), ``<code>_alert_s`` (t0 to the
webhook message received), ``<code>_ingest_per_s`` (decisions acknowledged per second
from t0 to the alert) next to ``baseline_ingest_per_s`` (before the first incident) and
``after_ingest_per_s``; each with the load average. Target: <= 60 s each, ingest unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import orjson

import _common as c
import _embedder
from serve import _free_port, start_server

BENCH = "detect"
CODES = ("MW104", "MW105", "MW301", "MW501")
PROD, CHAT, RANK, EMBED = "prompt/support@production", "chat/v1", "rank/v1", "embed/search"
SECRET_ENV = "MODELWARD_BENCH_HOOK_SECRET"


class Receiver:
    """The webhook channel's receiver: (arrival time, JSON body) of every POST."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append((time.monotonic(), orjson.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def opened(self, code: str, known: set[str]) -> float | None:
        for at, msg in list(self.got):
            f = msg.get("finding", {})
            if msg.get("state") == "opened" and f.get("code") == code \
                    and f.get("key") not in known:
                return at
        return None


def _prepare(home: Path, url: str | None, args) -> tuple[dict, str]:
    """The ledger the stream writes to: its digests by role and a writer token's secret."""
    import modelward
    from modelward.ledger import aliases, artifacts, evals, tokens
    from modelward.retrieval import fingerprinting
    from modelward.retrieval.embedders import parse_embedder_runner
    from modelward.retrieval.probes import load_probes

    if home.exists():
        shutil.rmtree(home)
    ledger = modelward.open(str(home), database_url=url or f"sqlite:///{home / 'ledger.db'}")
    s = ledger.store
    d = {"chat": artifacts.register_hosted(s, "acme:chat", name="chat").artifact.digest,
         "embed": artifacts.register_hosted(s, "acme:embed", name="embed",
                                            kind="embedder").artifact.digest}
    for role, content, name in (("p37", b"support v37", "support"),
                                ("p38", b"support v38", "support"),
                                ("r1", b"ranker v1", "ranker"), ("r2", b"ranker v2", "ranker")):
        kind = "prompt" if role.startswith("p") else "model"
        d[role] = artifacts.register_bytes(s, kind, content, name=name).artifact.digest
    with s.write() as conn:
        for alias, digest in ((CHAT, d["chat"]), (PROD, d["p37"]), (RANK, d["r1"]),
                              (EMBED, d["embed"])):
            aliases.set_alias(conn, alias, digest)
        run = evals.start_run(conn, evalset_digest="sha256:" + "e" * 64, prompt_alias=PROD,
                              prompt_digest=d["p37"], model_alias=CHAT,
                              model_digest=d["chat"], runner="bench:runner",
                              harness_version="bench", scorers=["exact"], kind="task")
        evals.finish_run(conn, run, status="completed", n_items=10, summary={"n": 10})
        secret = tokens.create(conn, role="writer", name="bench-detect",
                               email="bench@example.com")[1]
    d["runner"] = parse_embedder_runner("_embedder:embed")
    d["probes"] = load_probes()
    fingerprinting.run(s, EMBED, d["runner"], d["probes"], repeats=2)  # the baseline
    d["ledger"] = ledger
    (home / "modelward.toml").write_text(f"""
[check.MW105]
grace = "{args.grace}s"

[[alerts.channels]]
name = "bench"
kind = "webhook"
url = "{args.receiver_url}"
secret_env = "{SECRET_ENV}"
codes = {list(CODES)!r}
min_severity = "info"
""".replace("'", '"'))
    return d, secret


class Stream:
    """Client threads POSTing paced batches; the incidents change ``state``."""

    def __init__(self, base: str, secret: str, d: dict, rate: float, batch: int,
                 clients: int) -> None:
        self.base, self.secret, self.d = base, secret, d
        self.every = batch * clients / rate  # seconds between one client's batches
        self.batch, self.clients = batch, clients
        self.state = {"vendor": "acme-chat-2026-01", "prompt": d["p37"], "rank_moved": False}
        self.acked: list[tuple[float, int]] = []  # (response time, decisions)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.outs = ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
                     for i in range(256)]
        self.threads = [threading.Thread(target=self._client, args=(k,), daemon=True)
                        for k in range(clients)]

    def body(self, k: int) -> tuple[bytes, float]:
        from modelward.ids import uuid7

        st, d, out = dict(self.state), self.d, self.outs
        items = []
        for i in range(self.batch):
            if i % 2:
                pod = ("pod-1", "pod-2", "pod-stale")[i % 3]
                model = d["r2"] if st["rank_moved"] and pod != "pod-stale" else d["r1"]
                items.append({"id": uuid7(), "alias": RANK, "model_digest": model,
                              "process": pod, "subject": f"u-{i}", "output_digest": out[i & 255]})
            else:
                items.append({"id": uuid7(), "alias": CHAT, "model_digest": d["chat"],
                              "prompt_digest": st["prompt"], "vendor_model_id": st["vendor"],
                              "process": f"pod-{k}", "subject": f"u-{i}",
                              "output_digest": out[i & 255]})
        return orjson.dumps(items), time.monotonic()

    def _client(self, k: int) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.secret}",
                   "Content-Type": "application/json"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=120) as http:
            next_at = time.monotonic() + k * self.every / self.clients
            while not self.stop.is_set():
                body, sent = self.body(k)
                resp = http.post("/api/v1/decisions", content=body)
                if resp.status_code != 200:
                    self.errors.append(f"{resp.status_code}: {resp.text[:200]}")
                else:
                    self.acked.append((time.monotonic(), self.batch))
                next_at = max(next_at + self.every, sent)
                self.stop.wait(max(0.0, next_at - time.monotonic()))

    def sent_after(self) -> float:
        """A time by which every batch built before it has been sent (one period on)."""
        time.sleep(self.every + 0.05)
        return time.monotonic()

    def rate(self, t0: float, t1: float) -> float:
        n = sum(k for at, k in list(self.acked) if t0 <= at < t1)
        return n / (t1 - t0) if t1 > t0 else float("nan")


def _open_keys(http, code: str) -> set[str]:
    body = http.get("/api/v1/findings", params={"state": "open", "select": code}).json()
    return {f["key"] for f in body["findings"] if f["code"] == code}


def _plant(code: str, stream: Stream, d: dict, args) -> float:
    """Plant one incident; returns t0, the monotonic time of its first bad decision/event."""
    from modelward.ledger import aliases

    if code == "MW104":
        stream.state["vendor"] = "acme-chat-2026-03"
        return time.monotonic()
    if code == "MW105":
        with d["ledger"].store.write() as conn:
            aliases.set_alias(conn, RANK, d["r2"])
        moved = time.monotonic()
        stream.state["rank_moved"] = True
        return moved + args.grace
    if code == "MW301":
        with d["ledger"].store.write() as conn:
            aliases.set_alias(conn, PROD, d["p38"])
        stream.state["prompt"] = d["p38"]
        return time.monotonic()
    _embedder.ROTATED = True
    return time.monotonic()


def _prober(d: dict, every: float, stop: threading.Event) -> None:
    """``fingerprint run`` of the embedder every ``every`` seconds (the scheduled probe)."""
    from modelward.retrieval import fingerprinting

    while not stop.wait(every):
        try:
            fingerprinting.run(d["ledger"].store, EMBED, d["runner"], d["probes"], repeats=2)
        except Exception as exc:  # a busy ledger: the next probe tries again
            c.note(f"probe failed: {type(exc).__name__}: {exc}")


def _until(probe, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.25)
    return None


def run(args) -> None:
    import httpx

    root = Path(args.out) if args.out else c.out_dir(BENCH)
    home = root / "ledger"
    receiver = Receiver()
    args.receiver_url = receiver.url
    d, secret = _prepare(home, args.database_url, args)
    os.environ[SECRET_ENV] = "bench-detect-hook-key"
    proc, base = start_server(home, args.database_url, extra=["--watch", f"{args.interval}s"],
                               log=root / "serve.log")
    stream = Stream(base, secret, d, args.rate, args.batch, args.clients)
    stop_probe = threading.Event()
    results = []
    try:
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"},
                            timeout=60)
        for t in stream.threads:
            t.start()
        threading.Thread(target=_prober, args=(d, args.probe_every, stop_probe),
                         daemon=True).start()
        t_start = time.monotonic()
        time.sleep(args.baseline)
        baseline = stream.rate(t_start + 2, time.monotonic())
        c.emit(BENCH, "baseline_ingest_per_s", baseline, "1/s", target_rate=args.rate)
        for code in args.incidents:
            known = _open_keys(http, code)
            c.note(f"planting {code} ({len(known)} already open)")
            t0 = _plant(code, stream, d, args)
            opened = _until(lambda code=code, known=known:
                            (_open_keys(http, code) - known) and time.monotonic(),
                            args.timeout)
            alerted = _until(lambda code=code, known=known: receiver.opened(code, known),
                             max(5.0, args.timeout - (time.monotonic() - t0)))
            end = alerted or opened or time.monotonic()
            row = {"code": code, "t0_wall": time.time() - (time.monotonic() - t0),
                   "open": (opened - t0) if opened else None,
                   "alert": (alerted - t0) if alerted else None,
                   "ingest": stream.rate(t0, end), "load": os.getloadavg()[0]}
            results.append(row)
            for key, unit in (("open", "s"), ("alert", "s"), ("ingest", "1/s")):
                value = row[key] if row[key] is not None else float("nan")
                c.emit(BENCH, f"{code}_{key}{'_per_s' if key == 'ingest' else '_s'}", value,
                       unit, target=60 if unit == "s" else None, detected=row[key] is not None,
                       baseline_ingest_per_s=round(baseline, 1))
        t_after = time.monotonic()
        time.sleep(args.baseline / 2)
        c.emit(BENCH, "after_ingest_per_s", stream.rate(t_after, time.monotonic()), "1/s")
    finally:
        stream.stop.set()
        stop_probe.set()
        for t in stream.threads:
            t.join(30)
        proc.terminate()
        proc.wait(30)
        receiver.httpd.shutdown()
        d["ledger"].close()
    if stream.errors:
        raise SystemExit(f"detect bench: {len(stream.errors)} requests failed, e.g. "
                         f"{stream.errors[0]}")
    guard_runs, n = _breakdown(home, args.database_url, results)
    c.emit(BENCH, "guard_run_p50_s", c.median(guard_runs) if guard_runs else float("nan"),
           "s", runs=len(guard_runs), max=round(max(guard_runs, default=0), 2),
           decisions_in_ledger=n)


def _breakdown(home: Path, url: str | None, results: list[dict]) -> tuple[list[float], int]:
    """Where each detection's time went, from what the ledger recorded: ``<code>_wait_s``
    (t0 to the start of the guard run that opened the finding: the min-gap, a run already
    in progress, for MW501 the probe schedule too), ``<code>_run_s`` (that run's
    duration), ``MW501_probe_s`` (t0 to the probe that saw the change). Returns every
    watch run's duration and the decisions in the ledger."""
    import modelward
    from modelward.ledger.schema import check_runs, findings, fingerprints

    ledger = modelward.open(str(home), database_url=url or f"sqlite:///{home / 'ledger.db'}")
    try:
        with ledger.store.read() as conn:
            runs = {r["id"]: r for r in conn.execute(check_runs.select()).mappings()}
            opened = conn.execute(findings.select()).mappings().all()
            probes = sorted(r["at"] for r in conn.execute(fingerprints.select()).mappings())
            n = conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar()
    finally:
        ledger.close()
    for row in results:
        t0_us = row["t0_wall"] * 1e6
        mine = sorted((f for f in opened if f["code"] == row["code"]
                       and runs[f["opened_run"]]["finished_at"] >= t0_us),
                      key=lambda f: f["opened_at"])
        if not mine:
            continue
        run = runs[mine[0]["opened_run"]]
        c.emit(BENCH, f"{row['code']}_wait_s", (run["started_at"] - t0_us) / 1e6, "s")
        c.emit(BENCH, f"{row['code']}_run_s", run["seconds"], "s")
        if row["code"] == "MW501":
            seen = next((at for at in probes if at >= t0_us), None)
            if seen is not None:
                c.emit(BENCH, "MW501_probe_s", (seen - t0_us) / 1e6, "s")
    return [r["seconds"] for r in runs.values() if r["source"] == "watch" and r["seconds"]], n


def run_in_schema(args) -> None:
    """On PostgreSQL: in a fresh schema of ``--database-url``, dropped afterwards."""
    from record_postgres import Schema

    schema = Schema(args.database_url)
    try:
        args.database_url = schema.url
        run(args)
    finally:
        schema.drop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=3000, help="decisions per second sent")
    ap.add_argument("--batch", type=int, default=250, help="decisions per request")
    ap.add_argument("--clients", type=int, default=2, help="client threads")
    ap.add_argument("--incidents", nargs="+", choices=CODES, default=list(CODES))
    ap.add_argument("--baseline", type=float, default=30, help="seconds of ingest before "
                    "the first incident (the baseline rate)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait per incident")
    ap.add_argument("--interval", type=int, default=60, help="serve --watch INTERVAL (s)")
    ap.add_argument("--probe-every", type=float, default=20, help="fingerprint schedule (s)")
    ap.add_argument("--grace", type=int, default=5, help="[check.MW105] grace (s)")
    ap.add_argument("--database-url", help="PostgreSQL: measured in a fresh schema of it "
                    "(default: a fresh SQLite file)")
    ap.add_argument("--out", help="scratch directory (default: bench/out/detect)")
    ap.add_argument("--quick", action="store_true", help="tiny rate, one incident: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.rate, args.batch, args.baseline, args.incidents = 200, 50, 6, ["MW104"]
        args.timeout = min(args.timeout, 120)
    c.CONTEXT.update(rate=args.rate, batch=args.batch, clients=args.clients,
                     backend="postgresql" if args.database_url else "sqlite")
    c.note(f"{args.rate:,.0f} decisions/s in batches of {args.batch}; incidents "
           f"{' '.join(args.incidents)}")
    (run_in_schema if args.database_url else run)(args)


if __name__ == "__main__":
    main()
