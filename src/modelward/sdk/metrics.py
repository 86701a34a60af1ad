"""Prometheus metrics of a serving process's recorder, for the process's own ``/metrics``.

The recorder lives in the serving process, so its queue and its commits are measured there::

    from prometheus_client import REGISTRY
    REGISTRY.register(ledger.prometheus_collector())

``prometheus_client`` is imported only when a scrape collects (the SDK stays light).
See docs/monitoring.md.
"""

from __future__ import annotations


class RecorderCollector:
    """A ``prometheus_client`` collector of one :class:`~modelward.sdk.Ledger`'s recorder."""

    def __init__(self, ledger) -> None:
        self.ledger = ledger

    def describe(self):  # registering needs no collect() (no ledger work at registration)
        return []

    def collect(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        rec = self.ledger._recorder  # None until the first record()
        depth = GaugeMetricFamily("modelward_recorder_queue_depth",
                                  "Decisions recorded by this process, not committed yet.")
        depth.add_metric([], rec.queue_depth if rec else 0)
        yield depth
        committed = CounterMetricFamily("modelward_recorder_committed",
                                        "Decisions this process's recorder committed.")
        committed.add_metric([], rec.committed if rec else 0)
        yield committed
        failures = CounterMetricFamily("modelward_recorder_failures",
                                       "Commits that failed and are being retried.")
        failures.add_metric([], rec.failures if rec else 0)
        yield failures
        flush = SummaryMetricFamily("modelward_recorder_flush_seconds",
                                    "Time each commit (one chain block) took.")
        flush.add_metric([], count_value=rec.flushes if rec else 0,
                         sum_value=rec.flush_seconds if rec else 0.0)
        yield flush
        last = GaugeMetricFamily("modelward_recorder_last_flush_seconds",
                                 "How long the latest commit took.")
        if rec is not None and rec.last_flush_seconds is not None:
            last.add_metric([], rec.last_flush_seconds)
        yield last
