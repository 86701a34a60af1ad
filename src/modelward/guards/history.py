"""Guard runs kept in the ledger, and the ranked listing of the latest one.

:func:`run_and_record` is :func:`~modelward.guards.runner.run` plus a record of the run
(``modelward check`` and the dashboard's background run both call it): a ``running`` row
first, then the findings it showed and the lifecycle they update (opened, last seen,
resolved; :mod:`modelward.ledger.findings`). :func:`listing` reads the latest completed run
back, marks what is new since the run before it, filters and ranks: the one function
behind the findings page and ``GET /api/v1/findings/latest``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..errors import ValidationError
from ..ledger import acks as ledger_acks
from ..ledger import findings as ledger_findings
from ..ledger.engine import Store
from ..settings import Settings
from ..timefmt import iso, now_us
from . import config as check_config
from . import registry
from .acks import AckSuppression
from .refs import facts, facts_of
from .runner import Report, resolve_since, run

SOURCES = ("check", "dashboard", "watch")
MAX_SEARCH = 200
MAX_ALIAS = 300
CODE_PREFIX = re.compile(r"MW[0-9]{0,3}\Z")
LIVE_STATES = ("open", "acknowledged")  # the states of a finding the latest run showed
RESOLVED_SHOWN = 20  # recently resolved findings listed under the latest run's


def run_and_record(store: Store, settings: Settings, *, source: str, select=None,
                   ignore=None, fail_on=None, since: int | None = None,
                   now: int | None = None, progress=None,
                   keep: int | None = None, only=None,
                   incremental=None) -> tuple[Report, str]:
    """Run the guards and record the run; returns (report, run id). A run that fails is
    recorded as failed and the error raised again. Only the newest ``keep`` runs (default:
    the ``check_runs_kept`` setting) keep their findings rows.

    ``only`` (the watch's triggers): run just these of the selected guards. The run then
    resolves only findings of the guards it ran, and carries the findings rows of the
    other selected guards over from the latest completed run, so the run stays a complete
    listing; their lifecycle (last seen, runs) is left as it was."""
    if source not in SOURCES:
        raise ValueError(f"unknown run source {source!r}")
    started = now_us()
    now = started if now is None else now
    cfg = check_config.load(settings, select=select, ignore=ignore, fail_on=fail_on)
    since = resolve_since(cfg, since, now)
    selected = [c.code for c in registry.CODES if cfg.selects(c.code) and c.status == "active"
                and (only is None or c.code in only)]
    with store.write() as conn:
        run_id = ledger_findings.start_run(conn, source=source, started_at=started, now=now,
                                           since=since, guards=selected)
    try:
        report = run(store, settings, since=since, now=now, cfg=cfg, progress=progress,
                     only=only, incremental=incremental)
    except BaseException as exc:
        with store.write() as conn:
            ledger_findings.fail_run(conn, run_id, finished_at=now_us(),
                                     error=f"{type(exc).__name__}: {exc}")
        raise
    # acknowledged findings are still shown by this run: their lifecycle goes on
    rows = [_row(f) for f in report.findings] + [
        _row(f) for f, s in report.suppressed if isinstance(s, AckSuppression)]
    carried = []
    if only is not None:
        ran = set(report.guards_run)
        with store.read() as conn:
            latest = ledger_findings.latest_run(conn)
            if latest is not None:
                shown = {r["key"] for r in rows}
                carried = [_carried(r) for r in ledger_findings.run_findings(conn, latest.id)
                           if r.code not in ran and cfg.selects(r.code) and r.key not in shown]
    with store.write() as conn:
        ledger_findings.finish_run(conn, run_id, rows, carried=carried, finished_at=now_us(),
                                   guards=report.guards_run,
                                   counts=report.to_dict()["summary"],
                                   seconds=round(report.seconds, 3),
                                   keep=keep or settings.check_runs_kept)
    return report, run_id


def _carried(r: ledger_findings.RunFinding) -> dict:
    return {"key": r.key, "code": r.code, "severity": r.severity, "subject": r.subject,
            "message": r.message, "fix": r.fix,
            "evidence": json.dumps(r.evidence, sort_keys=True, default=str),
            "decisions": r.decisions, "aliases": r.aliases, "first_seen": r.first_seen,
            "last_seen": r.last_seen}


def _row(f) -> dict:
    fx = facts(f)
    return {"key": f.fingerprint, "code": f.code, "severity": f.severity,
            "subject": f.subject, "message": f.message, "fix": f.fix,
            "evidence": json.dumps(f.evidence, sort_keys=True, default=str),
            "decisions": fx.decisions, "aliases": fx.aliases, "first_seen": fx.first_seen,
            "last_seen": fx.last_seen}


# --- the listing -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the page's form and the API's query narrow the listing to."""

    severity: str | None = None  # exactly this severity
    guard: str | None = None  # a code prefix: MW1, MW105
    alias: str | None = None  # findings naming this alias
    since: int | None = None  # last seen (else opened) at or after
    q: str | None = None  # words that must all appear (code, name, subject, message, ids)
    new: bool = False  # only findings new since the previous run
    state: str | None = None  # open (nobody acknowledged it) | acknowledged

    @classmethod
    def parse(cls, *, severity=None, guard=None, alias=None, since=None, q=None,
              new=False, state=None) -> Filters:
        severity = (severity or "").strip().lower() or None
        if severity is not None and severity not in registry.SEVERITIES:
            raise ValidationError(f"unknown severity {severity[:40]!r}", field="severity",
                                  hint="one of " + ", ".join(registry.SEVERITIES))
        guard = (guard or "").strip().upper() or None
        if guard is not None and not CODE_PREFIX.match(guard):
            raise ValidationError(f"not a guard code or code prefix: {guard[:40]!r}",
                                  field="guard", hint="e.g. MW105 or MW1")
        alias = (alias or "").strip() or None
        if alias is not None and len(alias) > MAX_ALIAS:
            raise ValidationError(f"an alias is at most {MAX_ALIAS} characters",
                                  field="alias")
        q = (q or "").strip() or None
        if q is not None and len(q) > MAX_SEARCH:
            raise ValidationError(f"a search is at most {MAX_SEARCH} characters", field="q")
        state = (state or "").strip().lower() or None
        if state is not None and state not in LIVE_STATES:
            raise ValidationError(f"unknown state {state[:40]!r}", field="state",
                                  hint="one of " + ", ".join(LIVE_STATES))
        return cls(severity, guard, alias, since, q, bool(new), state)

    def active(self) -> bool:
        return any((self.severity, self.guard, self.alias, self.since is not None, self.q,
                    self.new, self.state))


@dataclass
class Item:
    """One finding of the latest run, with what the page and the API show beside it."""

    row: ledger_findings.RunFinding
    refs: tuple[tuple[str, str], ...]
    new: bool
    opened_at: int | None
    runs: int | None
    ack: object = None  # its active acknowledgement (modelward.ledger.acks.Ack), if any

    @property
    def state(self) -> str:
        return "acknowledged" if self.ack is not None else "open"

    @property
    def ref_kinds(self) -> dict[str, str]:
        """id -> kind of every id it names (the first kind, should two share an id)."""
        out: dict[str, str] = {}
        for kind, value in self.refs:
            out.setdefault(value, kind)
        return out

    @property
    def seen(self) -> int | None:
        return self.row.last_seen if self.row.last_seen is not None else self.opened_at

    def to_dict(self) -> dict:
        r = self.row
        return {"fingerprint": r.key, "code": r.code, "name": registry.BY_CODE[r.code].name,
                "severity": r.severity, "subject": r.subject, "message": r.message,
                "fix": r.fix, "evidence": r.evidence, "decisions": r.decisions,
                "aliases": r.aliases, "first_seen": iso(r.first_seen),
                "last_seen": iso(r.last_seen), "new": self.new,
                "opened_at": iso(self.opened_at), "runs": self.runs, "state": self.state,
                "acknowledged_by": self.ack.actor if self.ack else None,
                "ack_reason": self.ack.reason if self.ack else None,
                "ack_until": iso(self.ack.until) if self.ack else None,
                "refs": [{"kind": k, "id": v} for k, v in self.refs]}


@dataclass
class Group:
    code: str
    severity: str  # the most severe of its findings
    items: list[Item] = field(default_factory=list)

    @property
    def decisions(self) -> int:
        return sum(i.row.decisions or 0 for i in self.items)

    @property
    def aliases(self) -> int:
        return len({v for i in self.items for k, v in i.refs if k == "alias"})

    @property
    def new(self) -> int:
        return sum(i.new for i in self.items)

    @property
    def first_seen(self) -> int | None:
        return min((i.row.first_seen for i in self.items if i.row.first_seen), default=None)

    @property
    def last_seen(self) -> int | None:
        return max((i.row.last_seen for i in self.items if i.row.last_seen), default=None)

    def to_dict(self) -> dict:
        return {"code": self.code, "name": registry.BY_CODE[self.code].name,
                "severity": self.severity, "findings": len(self.items),
                "decisions": self.decisions, "aliases": self.aliases, "new": self.new,
                "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
                "fingerprints": [i.row.key for i in self.items]}


@dataclass
class Listing:
    run: ledger_findings.Run | None  # the latest completed run
    previous: ledger_findings.Run | None  # the completed run before it
    running: ledger_findings.Run | None  # a run in progress, if any
    groups: list[Group]
    total: int  # findings of the run before filtering
    filters: Filters
    resolved: list = field(default_factory=list)  # recently resolved lifecycle rows

    @property
    def shown(self) -> int:
        return sum(len(g.items) for g in self.groups)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in reversed(registry.SEVERITIES)}
        for g in self.groups:
            for i in g.items:
                out[i.row.severity] += 1
        return out


RUNNING_FOR = 30 * 60 * 1_000_000  # a "running" row older than this was left by a crash
RUNNING_MIN = 2 * 60 * 1_000_000


def current_runs(conn, now: int):
    """(the latest completed run, a run in progress started after it) — None for either
    when there is none. A ``running`` row is taken for one left by a crash (a server
    stopped mid-run) once it is ten times as old as the latest run took, at least two
    minutes and at most RUNNING_FOR."""
    latest = ledger_findings.latest_run(conn)
    running = ledger_findings.latest_run(conn, status="running")
    took = int((latest.seconds or 0) * 10_000_000) if latest else RUNNING_FOR
    limit = min(RUNNING_FOR, max(RUNNING_MIN, took))
    if running is not None and (running.started_at < now - limit or (
            latest is not None and latest.started_at > running.started_at)):
        running = None
    return latest, running


def listing(store: Store, filters: Filters | None = None, *, now: int | None = None) -> Listing:
    """The latest completed run's findings, new-since marked, filtered and ranked."""
    filters = filters or Filters()
    now = now_us() if now is None else now
    with store.read() as conn:
        latest, running = current_runs(conn, now)
        if latest is None:
            return Listing(None, None, running, [], 0, filters)
        previous = ledger_findings.latest_run(conn, before=latest)
        rows = ledger_findings.run_findings(conn, latest.id)
        before = ledger_findings.run_keys(conn, previous.id) if previous else None
        states = ledger_findings.lifecycles(conn, [r.key for r in rows])
        acked = ledger_acks.active(conn, now, [r.key for r in rows])
        resolved = ledger_findings.by_state(conn, "resolved", limit=RESOLVED_SHOWN, now=now)
    items = []
    for r in rows:
        state = states.get(r.key)
        # new: absent from the previous run, when that run ran this finding's guard;
        # with no such run, new when this run opened it
        if before is not None and r.code in previous.guards:
            new = r.key not in before
        else:
            new = state is not None and state.opened_run == latest.id
        items.append(Item(r, facts_of(r.code, r.evidence).refs, new,
                          state.opened_at if state else None, state.runs if state else None,
                          acked.get(r.key)))
    kept = [i for i in items if _matches(i, filters)]
    if filters.guard:
        resolved = [r for r in resolved if r["code"].startswith(filters.guard)]
    return Listing(latest, previous, running, _rank(kept), len(items), filters,
                   resolved=resolved)


def _matches(item: Item, f: Filters) -> bool:
    r = item.row
    if f.severity and r.severity != f.severity:
        return False
    if f.guard and not r.code.startswith(f.guard):
        return False
    if f.alias and ("alias", f.alias) not in item.refs and r.subject != f.alias:
        return False
    if f.since is not None and (item.seen is None or item.seen < f.since):
        return False
    if f.new and not item.new:
        return False
    if f.state and item.state != f.state:
        return False
    if f.q:
        text = " ".join([r.code, registry.BY_CODE[r.code].name, r.severity, r.subject,
                         r.message] + [v for _k, v in item.refs]).casefold()
        if not all(word in text for word in f.q.casefold().split()):
            return False
    return True


def _rank(items: list[Item]) -> list[Group]:
    """Guards most severe first, then by decisions affected, findings and code; inside a
    guard, the new first, then the most decisions, then the latest seen."""
    groups: dict[str, Group] = {}
    for i in items:
        g = groups.setdefault(i.row.code, Group(i.row.code, i.row.severity))
        if registry.RANK[i.row.severity] > registry.RANK[g.severity]:
            g.severity = i.row.severity
        g.items.append(i)
    for g in groups.values():
        g.items.sort(key=lambda i: (-registry.RANK[i.row.severity], not i.new,
                                    -(i.row.decisions or 0), -(i.seen or 0), i.row.key))
    return sorted(groups.values(), key=lambda g: (-registry.RANK[g.severity], -g.decisions,
                                                  -len(g.items), g.code))
