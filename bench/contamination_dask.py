"""Contamination scans on Dask: one process vs a local Dask cluster of 1 and 2 workers.

The pool is bench/contamination.py's generator at 1,000,000 documents (727 MiB of JSONL,
one file, so the cluster path cuts it into byte ranges) with its 2,250 planted copies of
5,000 eval items; cached under ``bench/out/contamination/5000x1000000p``. Every run is its
own process, the three paths interleaved per repeat:

* ``single`` — ``scan(items, [file_source(pool)])``, the default path (one process, a
  reader thread beside the matcher);
* ``dask-1``, ``dask-2`` — ``connect(workers=N)`` (a LocalCluster of N worker processes,
  one thread each) then ``scan(…, client=client)``: the eval index built once and
  scattered to every worker (``broadcast=True``), the pool in shards of at most 64 MiB;
* ``dask-2-stock`` — the same on a LocalCluster started with Dask's defaults, whose nanny
  gives workers ``MALLOC_TRIM_THRESHOLD_=65536`` (as ``dask worker`` does): what a scan
  gets on a stock cluster.

Figures: ``docs_per_s`` and ``mib_per_s`` (wall clock of the scan; the cluster's start-up
is ``cluster_start_s``, apart), ``cpu_seconds`` (the client process plus every worker:
on a busy machine CPU time is the steadier figure), ``speedup_vs_single`` (wall), and
``identical`` (1 when the report — matches, their order, locators — equals the single
process's, ``seconds`` aside). Each carries the repeats, and the one-minute load average
before and after the run (``load_before``/``load_after``, as ``uptime`` gives it): the
development machine has 2 cores shared with other work, so read ``dask-2`` against the
load. ``--quick``: 500 items, 20,000 documents.

    python bench/contamination_dask.py [--pool 1000000] [--items 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import orjson

import _common as c

BENCH = "contamination_dask"
MODES = ("single", "dask-1", "dask-2", "dask-2-stock")


def data(items: int, pool: int) -> Path:
    import contamination

    root = c.out_dir("contamination", f"{items}x{pool}p")
    if not (root / "truth.json").is_file():
        c.note(f"generating {items:,} items and {pool:,} documents in {root} …")
        contamination.generate(root, items, pool)
    return root


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(mode: str, root: Path, out: Path) -> None:
    from modelward.evals.contamination.corpus import file_source
    from modelward.evals.contamination.scan import scan
    from modelward.evals.harness.evalsets import load_evalset_file

    items = load_evalset_file(root / "evalset.jsonl")
    pool = root / "pool.jsonl"
    result: dict = {"load_before": round(os.getloadavg()[0], 2)}
    if mode == "single":
        cpu0, t0 = _cpu(), time.perf_counter()
        report = scan(items, [file_source(pool, "pool.jsonl")], max_matches=1000)
        result["seconds"] = time.perf_counter() - t0
        result["cpu_seconds"] = _cpu() - cpu0
    else:
        t0 = time.perf_counter()
        with _cluster(mode) as client:
            result["cluster_start_s"] = time.perf_counter() - t0
            before = sum(client.run(_cpu).values())
            cpu0, t0 = _cpu(), time.perf_counter()
            report = scan(items, [file_source(pool, "pool.jsonl")], client=client,
                          max_matches=1000)
            result["seconds"] = time.perf_counter() - t0
            result["cpu_seconds"] = _cpu() - cpu0 + sum(client.run(_cpu).values()) - before
    result["load_after"] = round(os.getloadavg()[0], 2)
    result["documents"] = report.documents
    result["report"] = {k: v for k, v in report.to_dict().items() if k != "seconds"}
    out.write_bytes(orjson.dumps(result))


@contextmanager
def _cluster(mode: str):
    """dask-N: modelward's own local cluster; dask-2-stock: a LocalCluster as Dask starts
    one by default (its nanny sets MALLOC_TRIM_THRESHOLD_=65536 for the workers)."""
    from modelward.evals.contamination.cluster import connect

    workers = int(mode.split("-")[1])
    if not mode.endswith("-stock"):
        with connect(workers=workers) as client:
            yield client
        return
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_child(mode: str, root: Path) -> dict:
    out = root / f"result-dask-{mode}.json"
    c.note(f"running {mode} …")
    subprocess.run([sys.executable, __file__, "--child", mode, "--data", str(root),
                    "--out", str(out)], check=True)
    return orjson.loads(out.read_bytes())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.out)
        return
    if args.quick:
        args.items, args.pool, args.repeats = 500, 20_000, 1
    root = data(args.items, args.pool)
    size_mib = (root / "pool.jsonl").stat().st_size / 1024 / 1024
    context = {"items": args.items, "pool": args.pool, "pool_mib": round(size_mib)}
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for _ in range(args.repeats):  # interleaved, so load on the machine hits each alike
        for mode in MODES:
            runs[mode].append(run_child(mode, root))
    single = c.median([r["seconds"] for r in runs["single"]])
    reference = runs["single"][0]["report"]
    for mode, rs in runs.items():
        seconds = c.median([r["seconds"] for r in rs])
        loads = {"load_before": [r["load_before"] for r in rs],
                 "load_after": [r["load_after"] for r in rs]}
        c.emit(BENCH, "docs_per_s", rs[0]["documents"] / seconds, "1/s", mode=mode,
               seconds=round(seconds, 2), **c.spread([r["seconds"] for r in rs]), **loads,
               **context)
        c.emit(BENCH, "mib_per_s", size_mib / seconds, "MiB/s", mode=mode, **context)
        c.emit(BENCH, "cpu_seconds", c.median([r["cpu_seconds"] for r in rs]), "s",
               mode=mode, **context)
        if mode != "single":
            c.emit(BENCH, "speedup_vs_single", single / seconds, "x", mode=mode, **context)
            c.emit(BENCH, "cluster_start_s", c.median([r["cluster_start_s"] for r in rs]),
                   "s", mode=mode, **context)
        same = all(r["report"] == reference for r in rs)
        c.emit(BENCH, "identical", int(same), "bool", mode=mode,
               contaminated=reference["contaminated"], **context)


if __name__ == "__main__":
    main()
