"""Guard runs and the findings' lifecycle: every read and write of ``check_runs``,
``check_findings`` and ``findings``.

A run is started (status ``running``), then finished with the findings it showed (``done``)
or failed. Finishing a run updates the lifecycle in the same transaction: a finding seen
for the first time (or again after it was resolved) is opened by this run; one still shown
gets this run as its last; an open finding of a guard that ran and no longer shows it is
resolved by this run. These rows are derived facts (running the guards again recomputes
them), so they are not chained; only the newest ``keep`` runs keep their findings rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..ids import uuid7
from .schema import check_findings, check_runs, findings

STATUSES = ("running", "done", "failed")
CHUNK = 500  # keys per IN (...) list: SQLite's and psycopg's parameter limits stay far away


@dataclass(frozen=True)
class Run:
    id: str
    source: str
    status: str
    started_at: int
    finished_at: int | None
    now: int
    since: int | None
    guards: tuple[str, ...]
    counts: dict | None
    seconds: float | None
    error: str | None

    def to_dict(self) -> dict:
        from ..timefmt import iso

        return {"id": self.id, "source": self.source, "status": self.status,
                "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
                "now": iso(self.now), "since": iso(self.since), "guards": list(self.guards),
                "counts": self.counts, "seconds": self.seconds, "error": self.error}


@dataclass(frozen=True)
class RunFinding:
    key: str
    code: str
    severity: str
    subject: str
    message: str
    fix: str | None
    evidence: dict
    decisions: int | None
    aliases: int | None
    first_seen: int | None
    last_seen: int | None


@dataclass(frozen=True)
class Lifecycle:
    key: str
    code: str
    opened_run: str
    opened_at: int
    last_run: str
    last_seen_at: int
    runs: int
    resolved_run: str | None
    resolved_at: int | None


def _run(row) -> Run:
    return Run(row.id, row.source, row.status, row.started_at, row.finished_at, row.now,
               row.since, tuple(json.loads(row.guards)),
               json.loads(row.counts) if row.counts else None, row.seconds, row.error)


def start_run(conn: Connection, *, source: str, started_at: int, now: int,
              since: int | None, guards: Sequence[str]) -> str:
    """A new run in state ``running``; returns its id."""
    run_id = uuid7()
    conn.execute(check_runs.insert().values(
        id=run_id, source=source, status="running", started_at=started_at, now=now,
        since=since, guards=json.dumps(list(guards))))
    return run_id


def finish_run(conn: Connection, run_id: str, rows: Sequence[dict], *, finished_at: int,
               guards: Sequence[str], counts: dict, seconds: float, keep: int,
               carried: Sequence[dict] = ()) -> None:
    """Store the findings ``rows`` (dicts with the check_findings columns but run_id) of
    ``run_id``, mark it done, update the lifecycle and drop the findings rows of runs older
    than the newest ``keep``. ``carried``: rows of guards this run did not run, copied from
    the run before so the run lists every finding; they leave the lifecycle alone."""
    run = get_run(conn, run_id)
    if run is None:
        raise LookupError(f"no guard run {run_id}")
    unique = {r["key"]: r for r in rows}  # one row per fingerprint
    stored = {**{r["key"]: r for r in carried}, **unique}
    for part in _chunks(list(stored.values())):
        conn.execute(check_findings.insert(), [{**r, "run_id": run_id} for r in part])
    conn.execute(check_runs.update().where(check_runs.c.id == run_id).values(
        status="done", finished_at=finished_at, guards=json.dumps(list(guards)),
        counts=json.dumps(counts, sort_keys=True), seconds=seconds))
    _lifecycle(conn, run_id, run.now, unique, guards)
    prune(conn, keep)


def fail_run(conn: Connection, run_id: str, *, finished_at: int, error: str) -> None:
    conn.execute(check_runs.update().where(check_runs.c.id == run_id).values(
        status="failed", finished_at=finished_at, error=error[:2000]))


def _lifecycle(conn, run_id: str, at: int, rows: dict[str, dict], guards) -> None:
    f = findings.c
    known = {}
    for part in _chunks(list(rows)):
        for row in conn.execute(sa.select(f.key, f.resolved_at).where(f.key.in_(part))):
            known[row.key] = row.resolved_at
    fresh = [{"key": k, "code": r["code"], "severity": r["severity"], "subject": r["subject"],
              "opened_run": run_id, "opened_at": at, "last_run": run_id, "last_seen_at": at,
              "runs": 1, "resolved_run": None, "resolved_at": None}
             for k, r in rows.items() if k not in known]
    for part in _chunks(fresh):
        conn.execute(findings.insert(), part)
    for key, resolved_at in known.items():
        r = rows[key]
        values = {"severity": r["severity"], "subject": r["subject"], "last_run": run_id,
                  "last_seen_at": at}
        if resolved_at is not None:  # back after it was resolved: opened again
            values.update(opened_run=run_id, opened_at=at, runs=1, resolved_run=None,
                          resolved_at=None)
        else:
            values["runs"] = f.runs + 1
        conn.execute(findings.update().where(f.key == key).values(**values))
    # open findings of the guards that ran, not shown by this run: resolved now
    open_keys = [row.key for row in conn.execute(sa.select(f.key).where(
        f.resolved_at.is_(None), f.code.in_(list(guards)), f.last_run != run_id))]
    for part in _chunks(open_keys):
        conn.execute(findings.update().where(f.key.in_(part)).values(
            resolved_run=run_id, resolved_at=at))


def prune(conn: Connection, keep: int) -> int:
    """Drop the runs (and their findings rows) older than the newest ``keep``; the
    lifecycle stays. Returns how many runs were dropped."""
    c = check_runs.c
    old = [row.id for row in conn.execute(
        sa.select(c.id).order_by(c.started_at.desc(), c.id.desc()).offset(keep))]
    for part in _chunks(old):
        conn.execute(check_findings.delete().where(check_findings.c.run_id.in_(part)))
        conn.execute(check_runs.delete().where(c.id.in_(part)))
    return len(old)


def get_run(conn: Connection, run_id: str) -> Run | None:
    row = conn.execute(sa.select(check_runs).where(check_runs.c.id == run_id)).first()
    return _run(row) if row else None


def latest_run(conn: Connection, *, status: str = "done",
               before: Run | None = None) -> Run | None:
    """The newest run in ``status`` (started before ``before``, when given)."""
    c = check_runs.c
    query = sa.select(check_runs).where(c.status == status)
    if before is not None:
        query = query.where(sa.or_(c.started_at < before.started_at,
                                   sa.and_(c.started_at == before.started_at,
                                           c.id < before.id)))
    row = conn.execute(query.order_by(c.started_at.desc(), c.id.desc()).limit(1)).first()
    return _run(row) if row else None


def recent_runs(conn: Connection, limit: int = 20) -> list[Run]:
    c = check_runs.c
    return [_run(r) for r in conn.execute(
        sa.select(check_runs).order_by(c.started_at.desc(), c.id.desc()).limit(limit))]


def run_findings(conn: Connection, run_id: str) -> list[RunFinding]:
    c = check_findings.c
    rows = conn.execute(sa.select(check_findings).where(c.run_id == run_id))
    return [RunFinding(r.key, r.code, r.severity, r.subject, r.message, r.fix,
                       json.loads(r.evidence), r.decisions, r.aliases, r.first_seen,
                       r.last_seen) for r in rows]


def run_keys(conn: Connection, run_id: str) -> set[str]:
    c = check_findings.c
    return set(conn.execute(sa.select(c.key).where(c.run_id == run_id)).scalars())


def lifecycles(conn: Connection, keys: Iterable[str]) -> dict[str, Lifecycle]:
    out = {}
    f = findings.c
    for part in _chunks(list(keys)):
        for r in conn.execute(sa.select(findings).where(f.key.in_(part))):
            out[r.key] = Lifecycle(r.key, r.code, r.opened_run, r.opened_at, r.last_run,
                                   r.last_seen_at, r.runs, r.resolved_run, r.resolved_at)
    return out


STATES = ("open", "resolved", "acknowledged", "all")


def by_state(conn: Connection, state: str, *, guard: str | None = None,
             limit: int = 1000, now: int | None = None) -> list[dict]:
    """The findings' lifecycle rows (``open``: not resolved and not acknowledged;
    ``acknowledged``: open with an active ack; ``resolved``; ``all``), newest activity
    first, each with what the last run that showed it said and its active ack (``ack``,
    None when there is none)."""
    from ..timefmt import now_us
    from . import acks

    if state not in STATES:
        raise ValueError(state)
    now = now_us() if now is None else now
    f, cf = findings.c, check_findings.c
    query = (sa.select(findings, cf.message, cf.fix)
             .select_from(findings.outerjoin(check_findings, sa.and_(
                 cf.run_id == f.last_run, cf.key == f.key)))
             .order_by(sa.func.coalesce(f.resolved_at, f.last_seen_at).desc(), f.key)
             .limit(limit))
    acked = acks.active_keys(now)
    if state == "open":
        query = query.where(f.resolved_at.is_(None), f.key.not_in(acked))
    elif state == "acknowledged":
        query = query.where(f.resolved_at.is_(None), f.key.in_(acked))
    elif state == "resolved":
        query = query.where(f.resolved_at.is_not(None))
    if guard:
        query = query.where(f.code.startswith(guard, autoescape=True))
    rows = [dict(r._mapping) for r in conn.execute(query)]
    by_key = acks.active(conn, now, [r["key"] for r in rows])
    for r in rows:
        r["ack"] = by_key.get(r["key"])
    return rows


def _chunks(items: list) -> Iterable[list]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def finished_after(conn: Connection, at: int, limit: int = 100) -> list[Run]:
    """Completed runs that finished at or after ``at``, oldest first (the event stream)."""
    c = check_runs.c
    return [_run(r) for r in conn.execute(
        sa.select(check_runs).where(c.status == "done", c.finished_at >= at)
        .order_by(c.finished_at, c.id).limit(limit))]
