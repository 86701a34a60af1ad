"""Guards that run by themselves: after new blocks are sealed, and on a schedule.

:func:`watch` polls the chain's newest block every ``poll`` seconds; when a write sealed a
new block (decisions, alias moves, eval runs, fingerprints, promotions: every chained write
seals one) and ``min_gap`` has passed since the last run, or when ``interval`` has passed
with no run at all (the backstop: time alone changes windowed findings), it runs the guards,
records the run (the findings' lifecycle: opened, still open, resolved) and sends the
alerts of what opened or resolved. ``modelward watch`` runs it in the foreground; ``modelward
serve --watch INTERVAL`` (setting ``watch_interval``) in a thread of the server.

Each run is a full guard run over the configured window (``check.window``): what it costs is
what ``modelward check`` costs on the ledger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..guards.history import current_runs, run_and_record
from ..ledger.chain import last_block
from ..ledger.engine import Store
from ..settings import Settings
from .deliver import Summary, notify

log = logging.getLogger("modelward.watch")


@dataclass
class Ran:
    run_id: str
    reason: str  # "new blocks" | "schedule" | "start"
    head: int
    findings: int
    seconds: float
    alerts: Summary


def watch(store: Store, settings: Settings, *, interval: float, min_gap: float = 10.0,
          poll: float = 1.0, stop: threading.Event | None = None, once: bool = False,
          on_run: Callable[[Ran], None] | None = None, clock=time.monotonic) -> int:
    """Run the guards whenever new blocks were sealed (at most every ``min_gap`` seconds)
    and at least every ``interval`` seconds, until ``stop`` is set (or after one run with
    ``once``). Returns how many runs it made. A failed run is logged (and recorded as a
    failed run) and the loop goes on."""
    stop = stop or threading.Event()
    runs, seen, last_run = 0, None, None
    while not stop.is_set():
        with store.read() as conn:
            head = last_block(conn)[0]
        now = clock()
        due = None
        if last_run is None:
            due = "start"
        elif head != seen and now - last_run >= min_gap:
            due = "new blocks"
        elif now - last_run >= interval:
            due = "schedule"
        if due is not None and _busy(store):
            due = None  # a `check` or the dashboard is running the guards right now
        if due is not None:
            seen, last_run = head, clock()
            t0 = time.perf_counter()
            try:
                report, run_id = run_and_record(store, settings, source="watch")
            except Exception as exc:  # recorded as a failed run by run_and_record
                log.warning("guard run failed: %s: %s", type(exc).__name__, exc)
            else:
                runs += 1
                ran = Ran(run_id, due, head, len(report.findings),
                          time.perf_counter() - t0, notify(store, settings, run_id))
                if on_run is not None:
                    on_run(ran)
            if once:
                break
        stop.wait(poll)
    return runs


def _busy(store: Store) -> bool:
    from ..timefmt import now_us

    with store.read() as conn:
        return current_runs(conn, now_us())[1] is not None


def start_in_thread(store: Store, settings: Settings, interval: float) -> threading.Event:
    """``watch`` in a daemon thread (the server's); set the returned event to stop it."""
    stop = threading.Event()

    def logged(ran: Ran) -> None:
        log.info("guard run %s (%s): %d findings in %.1fs; %s", ran.run_id, ran.reason,
                 ran.findings, ran.seconds, ran.alerts.line())

    threading.Thread(target=watch, args=(store, settings),
                     kwargs={"interval": interval, "stop": stop, "on_run": logged},
                     name="modelward-watch", daemon=True).start()
    return stop
