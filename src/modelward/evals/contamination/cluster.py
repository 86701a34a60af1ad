"""Contamination scans on a Dask distributed cluster (``pip install 'modelward[dask]'``).

::

    with connect(scheduler="tcp://scheduler:8786") as client:   # or connect(workers=4)
        report = scan(items, sources, client=client)

The eval index is built once, here, and sent to every worker once (``scatter`` with
``broadcast=True``); the pool is cut into shards (:mod:`.shards`: a file each, large
JSONL and text files into byte ranges at line boundaries) and each shard is one task
that reads its documents on the worker and returns only its matches. The shards'
findings are merged in reading order, so the report — matches, their order, locators —
is the one a scan in a single process gives. Workers read files at the paths the client
names (a shared filesystem or the same mounts) and need modelward installed.
"""

from __future__ import annotations

import logging
import socket
import uuid
from concurrent.futures import CancelledError
from contextlib import contextmanager

from ...errors import ConfigError, ModelwardError
from .report import Findings, Params, Progress
from .shards import ScanContext, ShardResult, plan, relocate, reread_shard, scan_shard

MIN_SHARD = 1 << 20  # smallest shard the automatic sizing picks
SHARDS_PER_THREAD = 4  # enough tasks to keep every worker busy to the end


UNREACHABLE = ("start one with `dask scheduler` (and `dask worker ADDRESS` on each machine), "
               "or pass the address it prints")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError("scanning on a Dask cluster needs dask.distributed, which is not "
                          "installed", hint="pip install 'modelward[dask]'") from None
    return distributed


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, *,
            timeout: float = 10.0):
    """A ``distributed.Client``: of the scheduler at ``scheduler`` (``tcp://host:port``),
    or of a local cluster of ``workers`` processes (one thread each) started for it and
    closed afterwards. Raises ConfigError when dask is missing, the scheduler cannot be
    reached or it has no workers within ``timeout`` seconds."""
    if (scheduler is None) == (workers is None):
        raise ConfigError("give a scheduler address or a number of workers, not both")
    dd = _distributed()
    if scheduler is not None:
        _reachable(scheduler, timeout)
        try:
            client = dd.Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                              hint=UNREACHABLE) from None
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError):
                raise ConfigError(f"the Dask scheduler at {scheduler} has no workers",
                                  hint="start some with `dask worker " + scheduler + "`"
                                  ) from None
            yield client
        finally:
            client.close()
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number of at least 1, got {workers!r}")
    import dask

    # on this machine only, its HTTP endpoint on any free port (8787 may be taken). Dask's
    # nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
    # adaptive mmap threshold: every large numpy temporary is then a fresh mmap and its
    # page faults, and a scan runs about half as fast; these workers keep the default
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = dd.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.ERROR)
    try:
        with dd.Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


def _reachable(address: str, timeout: float) -> None:
    """Fail fast, with the reason, when nothing listens at a scheduler address (the
    client itself would retry until its timeout and say only that it timed out)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{address!r} is not a Dask scheduler address ({exc})",
                          hint="e.g. tcp://scheduler-host:8786") from None
    if scheme not in ("tcp", "tls", "ws", "wss"):
        raise ConfigError(f"{address!r} is not a Dask scheduler address (unknown protocol "
                          f"{scheme!r})", hint="e.g. tcp://scheduler-host:8786")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} "
                          f"({exc.strerror or exc})", hint=UNREACHABLE) from None


def scan_on_cluster(client, index, ids: list[str], sources: list, params: Params,
                    progress: Progress | None = None) -> Findings:
    """The findings of ``sources`` scanned by the cluster's workers (see the module)."""
    dd = _distributed()
    threads = sum(client.nthreads().values()) or 1
    total = sum(s.size or 0 for s in sources)
    target = min(params.shard_bytes, max(MIN_SHARD, total // (SHARDS_PER_THREAD * threads)))
    shards = plan(sources, target)
    total = sum(sh.size for sh in shards) or None
    context = client.scatter(ScanContext(index, ids, params), broadcast=True, hash=False)
    run = uuid.uuid4().hex[:12]
    futures = [client.submit(scan_shard, context, shard, pure=False,
                             key=f"modelward-contamination-{run}-{n}")
               for n, shard in enumerate(shards)]
    number = {f.key: n for n, f in enumerate(futures)}
    results: dict[int, ShardResult] = {}
    errors: dict[int, BaseException] = {}
    done = documents = 0
    try:
        if progress is not None:
            progress(0, total, 0)
        for future in dd.as_completed(futures, loop=client.loop):
            n = number[future.key]
            if errors and n > min(errors):
                continue  # a shard before it failed: its result cannot matter
            try:
                results[n] = future.result()
            except ModelwardError as exc:
                errors[n] = exc
                client.cancel(futures[n + 1:])
                continue
            except (dd.KilledWorker, CancelledError) as exc:
                # a worker died (its tasks retried until KilledWorker), or every copy of
                # the eval index went with it and the tasks were dropped
                raise ModelwardError(f"the Dask cluster lost the scan of {_where(shards[n])} "
                                     f"({exc})", hint="a worker died or left the cluster: "
                                     "check its memory limit and logs, then scan again") from None
            done += shards[n].size
            documents += results[n].findings.documents
            if progress is not None:
                progress(done, total, documents)
        if errors:
            first = min(errors)
            raise _first_error(client, shards, results, first, errors[first])
    finally:  # nothing left queued or held on the cluster, whatever happened
        client.cancel([*futures, context])
    return _merged(shards, results, sources, params)


def _where(shard) -> str:
    return shard.piece.label if shard.piece is not None else shard.name


def _lines_before(shards, results, n: int) -> int:
    """Lines of the ranges of the same file before shard ``n``."""
    return sum(results[m].lines or 0 for m in range(n - shards[n].part, n))


def _first_error(client, shards, results, n: int, exc: BaseException) -> BaseException:
    """The error of the first failing shard as a single-process scan reports it: a range
    is read again with its true line numbers, so the line the error names is the file's."""
    shard = shards[n]
    if shard.part == 0:
        return exc
    try:
        client.submit(reread_shard, shard, _lines_before(shards, results, n) + 1,
                      pure=False).result()
    except ModelwardError as again:
        return again
    return exc


def _merged(shards, results: dict[int, ShardResult], sources, params: Params) -> Findings:
    found = Findings(params.max_matches)
    lines = 0  # of the ranges of the current file before this one
    for n, shard in enumerate(shards):
        result = results[n]
        lines = 0 if shard.part == 0 else lines + (results[n - 1].lines or 0)
        found.merge(result.findings, relocate(shard, lines))
        src = sources[shard.source]
        src.documents_read += result.findings.documents
        src.skipped += result.skipped
    for src in sources:
        src.consumed = src.size or 0
    return found
