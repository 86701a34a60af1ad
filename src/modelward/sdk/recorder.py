"""The background recorder serving code writes decisions through.

``batched`` (default): :meth:`Recorder.record` validates and queues the decision and
returns; a thread commits the queue as one chain block every ``flush_interval`` (50 ms) or
as soon as ``flush_records`` are waiting, and once more at exit. A process that crashes
(SIGKILL, power loss) loses at most the decisions queued since the last commit: one flush
interval's worth, never more than ``queue_limit``.

``durable``: :meth:`record` returns only after the decision is appended to this process's
spool file and fsynced; the thread then commits it. A spool left behind by a process that
died is replayed by the next :func:`modelward.open` on the same home, and client-made ids
make the replay idempotent.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
import weakref
from collections import deque
from pathlib import Path

import orjson

from ..errors import StorageError
from ..filemodes import file_mode, make_dirs
from ..ids import uuid7
from ..ledger import decisions as ledger_decisions
from ..ledger import experiments as ledger_experiments
from ..ledger.engine import Store
from ..timefmt import now_us

log = logging.getLogger("modelward.recorder")
# In the payload slot of a queued (row, payload): the row is an experiment exposure.
EXPOSURE = "exposure"


def _report(res: ledger_decisions.AppendResult) -> None:
    """The recorder has no caller to raise to: a recorded id sent again with other content
    is kept out of the ledger (the first content stands) and logged as an error."""
    if res.conflicts:
        log.error("modelward recorder: %s", ledger_decisions.conflict_error(res.conflicts).message)


def _commit(store: Store, part: list) -> None:
    """Write a batch holding decisions and exposures (each kind in its own transaction;
    client-made ids make a retry after a partial commit harmless)."""
    rows, payloads, exposures = [], [], []
    for row, payload in part:
        if payload is None:
            rows.append(row)
        elif payload == EXPOSURE:
            exposures.append(row)
        else:
            rows.append(row)
            payloads.append(payload)
    if rows:
        _report(ledger_decisions.append(store, rows, payloads, on_conflict="report"))
    if exposures:
        ledger_experiments.append_exposures(store, exposures)


class SegmentFile:
    """One spool segment opened for appending (0600): the few calls the spool makes, so each
    one's result is checked in one place."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def fileno(self) -> int:
        return self.fd

    def write(self, data) -> int:
        return os.write(self.fd, data)

    def sync(self) -> None:
        os.fsync(self.fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def _storage_error(what: str, path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    return StorageError(f"durable spool: {what} {path} failed: {reason} "
                        f"(errno {errno.errorcode.get(exc.errno, exc.errno)}); "
                        "the decision was not recorded",
                        hint="free space on or fix permissions of the spool directory "
                             "(MODELWARD_SPOOL_DIR); record() may be retried with the same id")


class _Spool:
    """Append-only, fsynced segment files, one process holding an exclusive lock on its own.

    An append is acknowledged only once all its bytes are written and fsynced. A write error,
    a short write that makes no progress or an fsync error raises :class:`StorageError`; the
    segment is cut back to its last acknowledged byte and set aside (its records are still
    queued and replayable), and the next append starts a new segment."""

    def __init__(self, directory: Path, umask: int = 0o077, *,
                 file_factory=SegmentFile) -> None:
        self.dir, self.umask = directory, umask
        try:
            make_dirs(self.dir, umask)
        except OSError as exc:
            raise _storage_error("creating", directory, exc) from exc
        self.file_factory = file_factory
        self.prefix = f"spool-{os.getpid()}-{uuid7()}"
        self.segment = 0
        self.discarded = 0  # segments 1..discarded are gone
        self.fh = None  # opened on the first append after start, a rotation or a failure
        self.size = 0  # bytes of the open segment that are acknowledged

    def _path(self, n: int) -> Path:
        return self.dir / f"{self.prefix}-{n:08d}.jsonl"

    def _open_segment(self) -> None:
        self.segment += 1
        # Created under another name and renamed once locked: a replayer in another process
        # must never see the segment unlocked, take it for an orphan and delete it. A replayer
        # that found the ``.opening`` file in the instant before it was locked removes it; the
        # rename then fails and the segment is created again.
        path = self._path(self.segment)
        opening = path.with_suffix(".opening")
        for _ in range(3):
            fh = None
            try:
                fh = self.file_factory(opening)
                os.fchmod(fh.fileno(), file_mode(self.umask))  # raw text: owner-only by default
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                os.replace(opening, path)
            except FileNotFoundError:
                if fh is not None:
                    fh.close()
                continue
            except OSError as exc:
                if fh is not None:
                    fh.close()
                    with contextlib.suppress(OSError):
                        os.unlink(opening)
                raise _storage_error("creating", path, exc) from exc
            break
        else:
            raise StorageError(f"durable spool: {path} kept disappearing while being created")
        try:
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            fh.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise _storage_error("syncing the directory of", path, exc) from exc
        self.fh, self.size = fh, 0

    def append(self, row: tuple, payload) -> None:
        data = orjson.dumps([row, payload]) + b"\n"
        if self.fh is None:
            self._open_segment()
        fh, start = self.fh, self.size
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                n = fh.write(view[done:])
                if not n:  # no progress and no error: the device is full
                    raise OSError(errno.ENOSPC, f"short write ({done} of {len(data)} bytes)")
                done += n
            fh.sync()
        except OSError as exc:
            self._set_aside(start)
            raise _storage_error("appending to", self._path(self.segment), exc) from exc
        self.size = start + len(data)

    def _set_aside(self, good: int) -> None:
        """Cut the segment back to its acknowledged bytes (a torn line must not glue itself
        to the next record) and stop writing to it: its records are queued, and it stays on
        disk until they are committed."""
        fh, self.fh = self.fh, None
        try:
            fh.truncate(good)
            fh.sync()
        except OSError:
            pass  # replay skips a torn line; nothing is ever appended after it
        finally:
            fh.close()

    def rotate(self) -> int:
        """Close the current segment; returns its number. The next append opens a new one,
        so a full disk never holds up the commits that free it."""
        if self.fh is not None:
            fh, self.fh = self.fh, None
            fh.close()
        return self.segment

    def discard_through(self, segment: int) -> None:
        # from the last one discarded: starting at 1 made every drain cost O(uptime) unlinks
        for n in range(self.discarded + 1, segment + 1):
            self._path(n).unlink(missing_ok=True)
        self.discarded = max(self.discarded, segment)

    def close(self) -> None:
        """Remove every segment: called once everything queued is committed."""
        self.rotate()
        self.discard_through(self.segment)


def _read_segment(data: bytes) -> tuple[list, list, list]:
    rows, payloads, exposures = [], [], []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            row, payload = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn line: record() never returned for it
        if payload == EXPOSURE:
            exposures.append(tuple(row))
            continue
        rows.append(tuple(row))
        if payload:
            payloads.append(tuple(payload))
    return rows, payloads, exposures


def replay_orphaned_spools(store: Store, directory: Path) -> int:
    """Commit the decisions in spool files no live process holds; returns how many.

    Segments still named ``.opening`` (a process killed while creating one) are replayed
    the same way and removed, whether empty or not."""
    if not directory.is_dir():
        return 0
    replayed = 0
    paths = sorted([*directory.glob("spool-*.jsonl"), *directory.glob("spool-*.opening")])
    for path in paths:
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            continue
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            rows, payloads, exposures = _read_segment(fh.read())
            for i in range(0, len(rows), 5000):
                chunk = rows[i:i + 5000]
                ids = {r[0] for r in chunk}
                res = ledger_decisions.append(store, chunk, [p for p in payloads if p[0] in ids],
                                              on_conflict="report")
                _report(res)
                replayed += res.inserted
            for i in range(0, len(exposures), 5000):
                replayed += ledger_experiments.append_exposures(store, exposures[i:i + 5000])
            path.unlink(missing_ok=True)
    if replayed:
        log.warning("replayed %d decisions from spool files in %s", replayed, directory)
    return replayed


class Recorder:
    """Queue decisions in the caller's thread; commit them in a background thread."""

    def __init__(self, store: Store, *, mode: str = "batched", flush_interval_us: int = 50_000,
                 flush_records: int = 2000, queue_limit: int = 200_000,
                 spool_dir: Path | None = None, process: str | None = None) -> None:
        if mode not in ("batched", "durable"):
            raise ValueError(mode)
        self.store = store
        self.mode = mode
        self.interval = flush_interval_us / 1e6
        self.flush_records = max(1, flush_records)
        self.queue_limit = queue_limit
        self.process = process
        # a decision dated beyond these bounds is refused at record() (a wrong host clock)
        self._skew = store.settings.clock_skew
        self._window = store.settings.ingest_window
        self._queue: deque = deque()
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._spool_lock = threading.Lock()
        self._spool = _Spool(spool_dir, store.settings.umask_bits) if mode == "durable" \
            else None
        self._closed = False
        self.committed = 0
        self.failures = 0
        self.flushes = 0  # commits made (one block each), their total and latest duration
        self.flush_seconds = 0.0
        self.last_flush_seconds: float | None = None
        self.last_error: BaseException | None = None
        self._pending = 0  # taken off the queue but not yet committed
        self._mixed = False  # an exposure was ever queued: batches need sorting by kind
        self._thread = threading.Thread(target=self._run, name="modelward-recorder", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: (r := ref()) is not None and r.close())

    # --- caller side ------------------------------------------------------------------
    def record(self, decision: dict) -> str:
        """Validate and queue one decision; returns its id."""
        if self._closed:
            raise RuntimeError("the recorder is closed")
        row, payload = ledger_decisions.normalize(decision, process=self.process)
        ledger_decisions.check_time(row[1], now_us(), skew=self._skew, window=self._window)
        self.submit(row, payload)
        return row[0]

    def submit_exposure(self, row: tuple) -> None:
        """Queue one normalized exposure (ledger.experiments.normalize_exposure)."""
        if self._closed:
            raise RuntimeError("the recorder is closed")
        self._mixed = True
        self.submit(row, EXPOSURE)

    def submit(self, row: tuple, payload) -> None:
        queue = self._queue
        if len(queue) >= self.queue_limit:
            self._backpressure()
        if self._spool is not None:
            with self._spool_lock:
                self._spool.append(row, payload)
                queue.append((row, payload))
        else:
            queue.append((row, payload))
        # set() takes a lock; once the thread has been woken, later records need not wake it
        if len(queue) >= self.flush_records and not self._wake.is_set():
            self._wake.set()

    def _backpressure(self) -> None:
        self._wake.set()
        deadline = time.monotonic() + 60
        while len(self._queue) >= self.queue_limit and time.monotonic() < deadline:
            time.sleep(0.001)

    def flush(self, timeout: float = 60.0) -> None:
        """Block until every decision queued so far is committed."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._drained:
            while self._queue or self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._queue) + self._pending} decisions are not "
                                       f"committed yet (last error: {self.last_error})")
                self._drained.wait(min(left, 0.05))
                self._wake.set()

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        try:
            self.flush(timeout)
        except TimeoutError as exc:
            log.error("modelward recorder closing with uncommitted decisions: %s", exc)
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        if self._spool is not None and not self._queue:
            self._spool.close()

    @property
    def queue_depth(self) -> int:
        """Decisions (and exposures) accepted but not committed yet."""
        return len(self._queue) + self._pending

    # --- background side --------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.05
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed and not self._queue:
                return
            try:
                self._drain()
                backoff = 0.05
            except Exception as exc:  # keep the queue; the database may come back
                self.failures += 1
                self.last_error = exc
                log.warning("modelward recorder could not commit (will retry): %s", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _drain(self) -> None:
        queue = self._queue
        if not queue:
            return
        segment = None
        # _pending is raised before the queue empties: flush() checks the queue, then
        # _pending, and must never see both empty while a batch is in flight.
        if self._spool is not None:
            with self._spool_lock:
                segment = self._spool.rotate()
                n = len(queue)
                self._pending = n
                batch = [queue.popleft() for _ in range(n)]
        else:
            n = len(queue)
            self._pending = n
            batch = [queue.popleft() for _ in range(n)]
        try:
            step = self.flush_records
            for i in range(0, len(batch), step):
                part = batch[i:i + step]
                started = time.perf_counter()
                if self._mixed:
                    _commit(self.store, part)
                else:
                    _report(ledger_decisions.append(self.store, [r for r, _ in part],
                                                    [p for _, p in part if p is not None],
                                                    on_conflict="report"))
                self.committed += len(part)
                self._pending -= len(part)
                took = time.perf_counter() - started
                self.flushes += 1
                self.flush_seconds += took
                self.last_flush_seconds = took
        except BaseException:
            # put what was not committed back at the front, in order
            done = len(batch) - self._pending
            queue.extendleft(reversed(batch[done:]))
            self._pending = 0
            raise
        if segment is not None:
            self._spool.discard_through(segment)
        with self._drained:
            self._drained.notify_all()
