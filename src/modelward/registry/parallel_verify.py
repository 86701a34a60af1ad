"""Recomputing the chain in several processes: ``parallel_verify.verify(conn, workers=N)``.

Turning one decision's 21 chained values into Python objects costs the database driver
~2.5 µs, and hashing it ~1 µs more, all under one GIL: one process verifies ~300,000
decisions/s however fast the disk is. Here contiguous ranges of blocks, balanced by
decision count, go to worker processes (``python -m modelward.registry.parallel_verify``,
each with its own connection; the request travels on stdin, so a password never shows in
a process list) while the first range is judged in this process. Every range is judged by
the function the one-process path uses (on SQLite :func:`~modelward.ledger.chain_sqlite.
judge_blocks`, SQLite writing each row's JSON; else :func:`~modelward.ledger.chain.
judge_blocks`), so both report the same problems. The rollups are compared meanwhile on a
connection of their own (``chain.verify(apart=True)``). Rows naming a block past the last
one this snapshot lists are read here, on this snapshot: a block sealed meanwhile is never
taken for an unsealed one.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
from collections import namedtuple

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ..errors import StorageError
from ..ledger import chain, chain_sqlite, checkpoints
from ..ledger.engine import in_memory_sqlite

Sealed = namedtuple("Sealed", "root prev_root count")


def worker_url(conn: Connection) -> str | None:
    """A URL another process can open for this connection's database; None for an
    in-memory SQLite database, which no other process can see."""
    url = conn.engine.url
    if in_memory_sqlite(url):
        return None
    return url.render_as_string(hide_password=False)


def split(blocks, parts: int) -> list[tuple[int | None, int]]:
    """Contiguous ranges ``(after, through)`` of block numbers holding about the same number
    of decisions; the first range is open below (``after`` None), the last ends at the last
    block listed."""
    total = sum(b.count for b in blocks) or 1
    cuts: list[int] = []
    seen = 0
    for b in blocks[:-1]:
        seen += b.count
        if len(cuts) < parts - 1 and seen >= total * (len(cuts) + 1) / parts:
            cuts.append(b.number)
    bounds = [None, *cuts, blocks[-1].number]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _where(after: int | None, through: int | None, mark: str) -> tuple[str, tuple]:
    if after is None and through is None:
        return "", ()
    if after is None:
        return f"WHERE block <= {mark}", (through,)
    if through is None:
        return f"WHERE block > {mark}", (after,)
    return f"WHERE block > {mark} AND block <= {mark}", (after, through)


def _judge(conn, sealed: dict, after, through, problems, seen, progress=None) -> int:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    where, params = _where(after, through, mark)
    if conn.dialect.name == "sqlite" and chain_sqlite.SUPPORTED:  # SQLite writes the JSON
        with chain.streamed(conn, chain_sqlite.select(where), params or None,
                            size=chain.VERIFY_BATCH) as rows:
            return chain_sqlite.judge_blocks(conn, rows, sealed, problems, seen,
                                             progress=progress)
    with chain.streamed(conn, chain._select_chained(mark, where), params or None,
                        size=chain.VERIFY_BATCH) as rows:
        return chain.judge_blocks(rows, sealed, problems, seen, progress=progress)


def _run_worker(request: bytes) -> dict:
    done = subprocess.run([sys.executable, "-m", __name__], input=request,
                          capture_output=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise StorageError(f"a verify worker failed: {last}")
    return orjson.loads(done.stdout)


def judge_in_processes(conn: Connection, url: str, blocks, workers: int,
                       problems: list[chain.BlockProblem], seen: set[int], *,
                       progress=None) -> int:
    """Judge every decision row, ``workers`` processes in all (this one included); returns
    how many rows were read. ``progress`` hears of this process's blocks one by one and of
    each worker's when it finishes."""
    ranges = split(blocks, workers)
    by_number = {b.number: b for b in blocks}
    if len(ranges) < 2:
        return _judge(conn, by_number, blocks[0].number - 1 or None, None, problems, seen,
                      progress)
    requests = [orjson.dumps({"url": url, "after": after, "through": through, "sealed": [
        (b.number, b.root, b.prev_root, b.count) for b in blocks if after < b.number <= through]})
        for after, through in ranges[1:]]
    # threads only wait on the worker processes; the work happens in them and right here
    # from a checkpoint, ``blocks`` start after it: the first range starts there too
    floor = blocks[0].number - 1 or None
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(_run_worker, r) for r in requests]
        total = _judge(conn, by_number, floor, ranges[0][1], problems, seen, progress)
        total += _judge(conn, by_number, blocks[-1].number, None, problems, seen, progress)
        for future in futures:
            result = future.result()
            problems.extend(chain.BlockProblem(*p) for p in result["problems"])
            seen.update(result["seen"])
            total += result["total"]
            if progress:
                progress(result["total"])
    return total


def verify(conn: Connection, *, workers: int = 1, stop_at_first: bool = False,
           progress=None, keys=None, full: bool = True) -> chain.VerifyReport:
    """:func:`modelward.ledger.chain.verify`, with ``workers`` > 1 spreading the recomputation
    over that many processes, each reading its own range of blocks (a file or server
    database of at least ``2 * workers`` blocks; otherwise, and for an in-memory database,
    it runs here). Blocks past the last one the snapshot lists are read here, on that
    snapshot, so a block sealed meanwhile is never mistaken for an unsealed one.

    With ``keys`` (:class:`~modelward.ledger.heads.Keys`) and ``full`` False, it starts from
    the newest checkpoint they vouch for (:func:`modelward.ledger.checkpoints.verify`)."""

    def judge(conn, blocks, problems, seen_blocks, progress):
        url = worker_url(conn) if workers > 1 and len(blocks) >= 2 * workers else None
        if url is None:
            return None
        return judge_in_processes(conn, url, blocks, workers, problems, seen_blocks,
                                  progress=progress)

    # ``conn`` is a read transaction here (every caller's): the rollups are compared on a
    # connection of their own meanwhile (``chain.verify(apart=True)``)
    if keys is not None:
        report = checkpoints.verify(conn, keys, full=full, judge=judge, progress=progress,
                                    apart=True)
    else:
        report = chain.verify(conn, stop_at_first=stop_at_first, progress=progress, judge=judge,
                              apart=True)
    if report.checkpoint is None:  # all history: archived blocks are proven from their files
        from .archive import verify_files

        found = verify_files(conn)
        if found:
            report.problems = sorted(report.problems + found,
                                     key=lambda p: (p.block is None, p.block or 0))
            report.ok = False
    return report


def _worker_main() -> None:
    """One worker: a request on stdin, its findings as JSON on stdout."""
    request = orjson.loads(sys.stdin.buffer.read())
    engine = sa.create_engine(request["url"], poolclass=NullPool)
    problems: list[chain.BlockProblem] = []
    seen: set[int] = set()
    try:
        with engine.connect() as conn:
            sealed = {n: Sealed(root, prev, count) for n, root, prev, count in request["sealed"]}
            total = _judge(conn, sealed, request["after"], request["through"], problems, seen)
    finally:
        engine.dispose()
    sys.stdout.buffer.write(orjson.dumps({
        "problems": [(p.block, p.reason, p.decision_ids) for p in problems],
        "seen": sorted(seen), "total": total}))


if __name__ == "__main__":
    _worker_main()
