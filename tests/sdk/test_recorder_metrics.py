"""The recorder's Prometheus collector: what a serving process's /metrics shows of it."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from .test_recorder import block_sizes


def samples(led) -> dict[str, float]:
    reg = CollectorRegistry()
    reg.register(led.prometheus_collector())
    text = generate_latest(reg).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_before_anything_is_recorded_everything_reads_zero(open_ledger):
    got = samples(open_ledger())
    assert got["modelward_recorder_queue_depth"] == 0
    assert got["modelward_recorder_committed_total"] == 0
    assert got["modelward_recorder_flush_seconds_count"] == 0
    assert "modelward_recorder_last_flush_seconds" not in got


def test_queue_depth_commits_and_flush_latency(open_ledger):
    led = open_ledger(flush_interval="1h", flush_records=100_000)  # nothing commits by itself
    for i in range(40):
        led.record(subject=f"u{i}")
    time.sleep(0.2)
    assert samples(led)["modelward_recorder_queue_depth"] == 40
    led.flush()
    got = samples(led)
    assert got["modelward_recorder_queue_depth"] == 0
    assert got["modelward_recorder_committed_total"] == 40
    assert got["modelward_recorder_failures_total"] == 0
    assert got["modelward_recorder_flush_seconds_count"] == len(block_sizes(led)) == 1
    assert got["modelward_recorder_flush_seconds_sum"] == got[
        "modelward_recorder_last_flush_seconds"] > 0
