"""``bench/detect.py --quick`` end to end: a real ``modelward serve --watch``, a paced
ingest stream through the API and one planted incident (MW104). Asserts the figures it
prints and their shape, never the timings (those are the benchmark's, run by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_detect_quick_prints_one_json_line_per_figure(tmp_path):
    res = subprocess.run([sys.executable, str(BENCH / "detect.py"), "--quick",
                          "--out", str(tmp_path)],
                         cwd=BENCH, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert {line["bench"] for line in lines} == {"detect"}
    figures = {line["figure"]: line for line in lines}
    assert list(figures) == ["baseline_ingest_per_s", "MW104_open_s", "MW104_alert_s",
                             "MW104_ingest_per_s", "after_ingest_per_s", "MW104_wait_s",
                             "MW104_run_s", "guard_run_p50_s"]
    for line in lines:
        assert line["unit"] in ("s", "1/s") and isinstance(line["load_1m"], float)
        assert line["backend"] == "sqlite" and line["rate"] == 200
    # the incident was detected (open finding and delivered alert), whatever it took
    for name in ("MW104_open_s", "MW104_alert_s"):
        assert figures[name]["detected"] is True and figures[name]["value"] > 0
        assert figures[name]["target"] == 60
    assert figures["baseline_ingest_per_s"]["value"] > 0
    assert figures["MW104_ingest_per_s"]["baseline_ingest_per_s"] > 0
    # where the time went: the wait for a guard run, then the run that opened it
    assert figures["MW104_wait_s"]["value"] >= 0 and figures["MW104_run_s"]["value"] > 0
    assert figures["guard_run_p50_s"]["runs"] >= 1
    assert figures["guard_run_p50_s"]["decisions_in_ledger"] > 0
    assert (tmp_path / "serve.log").exists() and (tmp_path / "ledger" / "ledger.db").exists()
