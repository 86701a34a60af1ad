"""Shared helpers of the benchmarks: one JSON line per figure, medians, percentiles, memory.

Every figure is printed as one JSON object on its own line::

    {"bench": "record", "figure": "decisions_per_s", "value": 123456.0, "unit": "1/s", ...}

plus context (repeats, the spread of the repeats, sizes). Benchmarks never run in the test
suite; ``python bench/run.py`` (``make bench``) runs them all.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"  # git-ignored: cached ledgers and scratch databases
SRC = BENCH_DIR.parent / "src"
if str(SRC) not in sys.path:  # run from a checkout without an editable install too
    sys.path.insert(0, str(SRC))


def out_dir(*parts: str) -> Path:
    path = OUT.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


# Context every figure of this process carries (set once a benchmark knows it).
CONTEXT: dict = {}


def emit(bench: str, figure: str, value: float, unit: str, **context) -> dict:
    """Print one figure as a JSON line (flushed, so a long run shows progress)."""
    line = {"bench": bench, "figure": figure,
            "value": round(value, 3) if isinstance(value, float) else value, "unit": unit}
    line.update(context)
    for key, val in CONTEXT.items():
        line.setdefault(key, val)
    # other work on the machine skews every figure: say how busy it was
    line.setdefault("load_1m", round(os.getloadavg()[0], 2))
    emit_line(line)
    return line


def machine_line() -> dict:
    return {"bench": "machine", **machine(), "load_1m": round(os.getloadavg()[0], 2),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def emit_line(line: dict) -> str:
    """Print a prepared JSON line; returns it (newline included) for keeping."""
    text = orjson.dumps(line).decode() + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    return text


def note(message: str) -> None:
    """Progress for the human watching; stderr, so stdout stays pure JSON lines."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> dict:
    """The repeats behind a median, so a reader can judge the noise."""
    return {"repeats": len(values), "min": round(min(values), 3), "max": round(max(values), 3),
            "all": [round(v, 3) for v in values]}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values))) - 1))
    return float(sorted_values[k])


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes, with the garbage collector settled first."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB. Linux: VmHWM, because
    ru_maxrss survives execve and so counts the parent a subprocess was forked from."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


def current_rss_mb() -> float:
    try:
        import psutil
    except ImportError:
        return float("nan")
    return psutil.Process().memory_info().rss / 1024 / 1024


def machine() -> dict:
    """What the figures were measured on."""
    import sqlite3

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        mem_gb = float("nan")
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1),
            "os": f"{platform.system()} {platform.release()}"}
