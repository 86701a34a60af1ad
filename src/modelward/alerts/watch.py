"""Guards that run by themselves: after new blocks are sealed, and on a schedule.

:func:`watch` polls the chain's newest block every ``poll`` seconds; when writes sealed new
blocks (decisions, alias moves, eval runs, fingerprints, promotions: every chained write
seals one) and ``min_gap`` has passed since the last run, it runs the guards those blocks
concern (``guards.incremental.concerned``: new decision blocks → the decision guards; alias
event, eval run, fingerprint or promotion blocks → the guards that read those tables),
records the run (the findings' lifecycle: opened, still open, resolved — only for the
guards that ran) and sends the alerts of what opened or resolved. When ``interval`` has
passed with no scheduled run (the backstop: time alone changes windowed findings, and
payload files change outside the ledger) it runs every guard afresh.

Incremental: the process keeps the window's rollups in memory per hour
(``ledger.rollup_window``) and the chain block it verified last, so a trigger reads the
rollups of the new blocks and of the hour the window's start cuts, and verifies only the
new blocks (MW103). The backstop forgets that state and runs as ``modelward check`` does.
``modelward watch`` runs the loop in the foreground; ``modelward serve --watch INTERVAL``
(setting ``watch_interval``, minimum gap ``watch_min_gap``) in a thread of the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..guards.history import current_runs, run_and_record
from ..guards.incremental import Incremental, concerned
from ..ledger.chain import changed_after, last_block
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
    guards: tuple[str, ...] = ()  # the codes this run ran (all on start and schedule)


def watch(store: Store, settings: Settings, *, interval: float, min_gap: float = 10.0,
          poll: float = 1.0, stop: threading.Event | None = None, once: bool = False,
          on_run: Callable[[Ran], None] | None = None, clock=time.monotonic,
          state: Incremental | None = None) -> int:
    """Run the guards new blocks concern whenever blocks were sealed (at most every
    ``min_gap`` seconds), and every guard afresh at least every ``interval`` seconds, until
    ``stop`` is set (or after one run with ``once``). Returns how many runs it made. A
    failed run is logged (and recorded as a failed run), its state forgotten, and the loop
    goes on."""
    stop = stop or threading.Event()
    state = state if state is not None else Incremental()
    runs, last_run, last_full = 0, None, None
    while not stop.is_set():
        with store.read() as conn:
            head = last_block(conn)[0]
        now = clock()
        due = None
        if last_full is None:
            due = "start"
        elif now - last_full >= interval:
            due = "schedule"
        elif head != state.head and now - last_run >= min_gap:
            due = "new blocks"
        if due is not None and _busy(store):
            due = None  # a `check` or the dashboard is running the guards right now
        if due is not None:
            only = None
            if due == "new blocks":
                with store.read() as conn:
                    head, changed = changed_after(conn, state.head or 0)
                only = concerned(changed)
                state.saw(changed)
            else:
                state.reset()  # the backstop reads the window and verifies as configured
            last_run = clock()
            if only is None:
                last_full = last_run
            t0 = time.perf_counter()
            try:
                report, run_id = run_and_record(store, settings, source="watch", only=only,
                                                incremental=state)
            except Exception as exc:  # recorded as a failed run by run_and_record
                log.warning("guard run failed: %s: %s", type(exc).__name__, exc)
                state.reset()
            else:
                state.head = head
                runs += 1
                ran = Ran(run_id, due, head, len(report.findings),
                          time.perf_counter() - t0, notify(store, settings, run_id),
                          tuple(report.guards_run))
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


def start_in_thread(store: Store, settings: Settings, interval: float,
                    min_gap: float = 10.0) -> threading.Event:
    """``watch`` in a daemon thread (the server's); set the returned event to stop it."""
    stop = threading.Event()

    def logged(ran: Ran) -> None:
        log.info("guard run %s (%s, %d guards): %d findings in %.1fs; %s", ran.run_id,
                 ran.reason, len(ran.guards), ran.findings, ran.seconds, ran.alerts.line())

    threading.Thread(target=watch, args=(store, settings),
                     kwargs={"interval": interval, "min_gap": min_gap, "stop": stop,
                             "on_run": logged},
                     name="modelward-watch", daemon=True).start()
    return stop
