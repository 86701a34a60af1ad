"""``GET /metrics``: the ledger's state and this server's work in Prometheus's text format.

Every figure is read when Prometheus scrapes (a custom collector over one ledger snapshot,
:func:`modelward.ledger.metrics.snapshot`), so any worker process of ``modelward serve``
reports the same ledger state; the ingest counters are this process's since it started.
The route needs a live token of any role (Prometheus: ``authorization.credentials_file``);
``serve --metrics-listen HOST:PORT`` (setting ``metrics_listen``) serves the same metrics
without a token on a separate address, for a network only Prometheus reaches.
See docs/monitoring.md.
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from ..errors import ModelwardError
from ..guards.registry import SEVERITIES
from ..ledger import metrics as ledger_metrics
from . import otlp
from .auth import READ, require

router = APIRouter(tags=["health"])
US = 1e6



def ingest_counts(app) -> dict:
    """Decisions this process wrote from ``POST /api/v1/decisions`` since it started."""
    found = getattr(app.state, "ingest_counts", None)
    if found is None:
        found = app.state.ingest_counts = {"batches": 0, "inserted": 0, "duplicates": 0,
                                           "refused": 0}
    return found


class LedgerCollector:
    """Yields every modelward metric from one ledger snapshot per scrape."""

    def __init__(self, app) -> None:
        self.app = app
        self._lock = threading.Lock()  # one scrape at a time reads the ledger

    def collect(self):
        t0 = time.perf_counter()
        with self._lock, self.app.state.store.read() as conn:
            snap = ledger_metrics.snapshot(conn)
        yield from self._ledger(snap)
        yield from self._process()
        up = GaugeMetricFamily("modelward_scrape_seconds",
                               "Seconds this scrape spent reading the ledger.")
        up.add_metric([], time.perf_counter() - t0)
        yield up

    def _ledger(self, snap):
        g = GaugeMetricFamily("modelward_chain_blocks", "Blocks sealed in the ledger's chain.")
        g.add_metric([], snap.blocks)
        yield g
        c = CounterMetricFamily("modelward_decisions_sealed",
                                "Decisions sealed in the chain (all writers).")
        c.add_metric([], snap.decisions_sealed)
        yield c
        c = CounterMetricFamily("modelward_records_sealed",
                                "Other chained records (alias moves, eval runs, ...) sealed.")
        c.add_metric([], snap.records_sealed)
        yield c
        g = GaugeMetricFamily("modelward_chain_last_sealed_timestamp_seconds",
                              "When the newest block was sealed (Unix time).")
        if snap.last_sealed_at is not None:
            g.add_metric([], snap.last_sealed_at / US)
        yield g
        g = GaugeMetricFamily("modelward_findings_open",
                              "Findings open now (seen by the latest guard run of their "
                              "guard, not resolved), by guard code and severity.",
                              labels=["code", "severity"])
        for (code, severity), n in sorted(snap.open_findings.items()):
            g.add_metric([code, severity], n)
        yield g
        g = GaugeMetricFamily("modelward_findings_open_total",
                              "Findings open now, by severity.", labels=["severity"])
        for severity in SEVERITIES:
            g.add_metric([severity], sum(n for (_c, s), n in snap.open_findings.items()
                                         if s == severity))
        yield g
        c = CounterMetricFamily("modelward_guard_runs",
                                "Guard runs recorded, by source (check, dashboard) and status.",
                                labels=["source", "status"])
        for (source, status), n in sorted(snap.runs.items()):
            c.add_metric([source, status], n)
        yield c
        g = GaugeMetricFamily("modelward_guard_run_duration_seconds",
                              "Duration of the latest finished guard run, by source.",
                              labels=["source"])
        t = GaugeMetricFamily("modelward_guard_run_timestamp_seconds",
                              "When the latest guard run finished (Unix time), by source.",
                              labels=["source"])
        f = GaugeMetricFamily("modelward_guard_run_failed",
                              "1 when the latest guard run of the source failed.",
                              labels=["source"])
        for source, run in sorted(snap.last_runs.items()):
            if run.seconds is not None:
                g.add_metric([source], run.seconds)
            if run.finished_at is not None:
                t.add_metric([source], run.finished_at / US)
            f.add_metric([source], 1.0 if run.status == "failed" else 0.0)
        yield from (g, t, f)
        yield from _checkpoint_metrics(snap)
        g = GaugeMetricFamily("modelward_alert_deliveries",
                              "Alert deliveries by channel and status: pending (queued or "
                              "waiting to retry), delivered, failed (gave up).",
                              labels=["channel", "status"])
        for (channel, status), n in sorted(snap.deliveries.items()):
            g.add_metric([channel, status], n)
        yield g

    def _process(self):
        counts = ingest_counts(self.app)
        c = CounterMetricFamily("modelward_api_decisions",
                                "Decisions POST /api/v1/decisions handled by this process, "
                                "by outcome.", labels=["outcome"])
        for outcome in ("inserted", "duplicates", "refused"):
            c.add_metric([outcome], counts[outcome])
        yield c
        c = CounterMetricFamily("modelward_api_decision_batches",
                                "Batches POST /api/v1/decisions accepted by this process.")
        c.add_metric([], counts["batches"])
        yield c
        c = CounterMetricFamily("modelward_otlp_spans",
                                "OTLP spans received at /v1/traces by this process, by outcome.",
                                labels=["outcome"])
        spans = otlp.counts(self.app)
        for outcome in ("accepted", "duplicates", "ignored", "rejected"):
            c.add_metric([outcome], spans[outcome])
        yield c


def registry_of(app) -> CollectorRegistry:
    """The app's own registry (never prometheus_client's global one: each app, and each
    test's app, reports its own ledger)."""
    reg = getattr(app.state, "metrics_registry", None)
    if reg is None:
        reg = app.state.metrics_registry = CollectorRegistry(auto_describe=False)
        reg.register(LedgerCollector(app))
    return reg


@router.get("/metrics", dependencies=[Depends(require(*READ))],
            response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus exposition of the ledger's state and this process's ingest (any live
    token; see docs/monitoring.md): OpenMetrics when the scraper asks for it (Prometheus
    does), else the text format."""
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry_of(request.app)), media_type=media_type)


def serve_separately(app, listen: str):
    """Serve ``/metrics`` without a token on ``listen`` (HOST:PORT) from a thread; returns
    the server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    host, _, port = listen.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host, registry=registry_of(app))
    return server


def _checkpoint_metrics(snap):
    """How far verification lags: the newest stored checkpoint (its signature is checked by
    `verify` and MW103, not here) against the chain's head."""
    cp = snap.checkpoint if isinstance(snap.checkpoint, dict) else None
    block = GaugeMetricFamily("modelward_chain_checkpoint_block",
                              "Block the newest signed checkpoint covers (0: none).")
    block.add_metric([], _number(cp, "block"))
    yield block
    behind = GaugeMetricFamily("modelward_chain_blocks_after_checkpoint",
                               "Blocks sealed after the newest checkpoint: what the next "
                               "verify recomputes.")
    behind.add_metric([], max(snap.head_block - _number(cp, "block"), 0))
    yield behind
    for name, key, what in (
            ("modelward_chain_checkpoint_timestamp_seconds", "made_at",
             "When the newest checkpoint was made (Unix time)."),
            ("modelward_chain_full_verify_timestamp_seconds", "full_at",
             "When all history was last recomputed (`verify --full`), per the newest "
             "checkpoint (Unix time).")):
        g = GaugeMetricFamily(name, what)
        at = _time(cp, key)
        if at is not None:
            g.add_metric([], at)
        yield g


def _number(cp: dict | None, key: str) -> int:
    value = (cp or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(cp: dict | None, key: str) -> float | None:
    from ..timefmt import parse_time

    value = (cp or {}).get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value / US
    if isinstance(value, str):
        try:
            return parse_time(value) / US
        except (ValueError, TypeError, ModelwardError):
            return None
    return None
