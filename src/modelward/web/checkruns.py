"""The guards in the background: the findings page and ``GET /api/v1/findings/latest``
answer at once from the latest recorded run, and start a new run in a thread of this
server process when that run is older than ``findings_max_age``.

One run at a time per process; across the workers of one ``modelward serve`` the
``running`` row another worker recorded holds the others back. Progress (the guard
running, how many have run) is kept in memory by the process that runs them; the others
report only that a run is in progress.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ..alerts.deliver import notify
from ..guards.history import current_runs, run_and_record
from ..timefmt import iso, now_us

log = logging.getLogger(__name__)


@dataclass
class Progress:
    run_started: int
    code: str | None = None
    done: int = 0
    total: int = 0
    error: str | None = None

    def to_dict(self) -> dict:
        return {"started_at": iso(self.run_started), "guard": self.code, "done": self.done,
                "total": self.total}


@dataclass
class Runner:
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    progress: Progress | None = None
    last_error: str | None = None

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def runner_of(app) -> Runner:
    runner = getattr(app.state, "check_runner", None)
    if runner is None:
        runner = app.state.check_runner = Runner()
    return runner


def ensure_fresh(app, *, force: bool = False) -> bool:
    """Start a background guard run when none is running here or elsewhere and the latest
    completed run is older than ``findings_max_age`` (or ``force``). True when one started."""
    runner = runner_of(app)
    store = app.state.store
    with runner.lock:
        if runner.busy:
            return False
        now = now_us()
        with store.read() as conn:
            latest, running = current_runs(conn, now)
        if running is not None:
            return False  # another worker (or a `modelward check`) is at it
        if not force and latest is not None and (
                latest.finished_at or latest.started_at) > now - store.settings.findings_max_age:
            return False
        runner.progress = Progress(now)
        runner.thread = threading.Thread(target=_run, args=(runner, store),
                                         name="modelward-guards", daemon=True)
        runner.thread.start()
        return True


def _run(runner: Runner, store) -> None:
    progress = runner.progress

    def step(code: str, done: int, total: int) -> None:
        progress.code, progress.done, progress.total = code, done, total

    try:
        _report, run_id = run_and_record(store, store.settings, source="dashboard",
                                         progress=step)
        runner.last_error = None
        summary = notify(store, store.settings, run_id)
        if summary.errors:
            log.warning("%s", summary.line())
    except Exception as exc:  # recorded as a failed run; the page says so
        runner.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("background guard run failed: %s", runner.last_error)


def state(app) -> dict:
    """What the page's progress line and the API's ``state`` say: ``running`` (with
    progress when this process runs it), ``ready`` (the latest run is shown) or ``none``
    (nothing recorded yet), plus the latest run's id and the last error, if any."""
    runner = runner_of(app)
    with app.state.store.read() as conn:
        latest, running = current_runs(conn, now_us())
    busy = runner.busy
    return {"status": "running" if busy or running else ("ready" if latest else "none"),
            "run": latest.id if latest else None,
            "finished_at": iso(latest.finished_at) if latest else None,
            "progress": runner.progress.to_dict() if busy and runner.progress else None,
            "error": runner.last_error}


def wait(app, timeout: float = 60) -> bool:
    """Wait for this process's background run to end; True when none is running."""
    thread = runner_of(app).thread
    if thread is not None:
        thread.join(timeout)
    return not runner_of(app).busy
