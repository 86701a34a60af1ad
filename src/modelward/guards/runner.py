"""Run the selected guards over one ledger snapshot and apply suppressions.

The CLI (``modelward check``) and the API call :func:`run`; it returns a :class:`Report`
whose :meth:`~Report.exit_code` is the one rule for pass/fail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ..ledger import acks as ledger_acks
from ..ledger.engine import Store, storage_errors
from ..settings import Settings
from ..timefmt import iso, now_us
from . import config as check_config
from . import registry
from .config import CheckConfig, Suppression
from .finding import Finding
from .view import View


@dataclass
class Report:
    findings: list[Finding]  # what is left after suppressions, most severe first
    suppressed: list[tuple[Finding, Suppression]]
    guards_run: list[str]
    planned: list[str]  # selected codes no module implements yet
    fail_on: str
    now: int
    since: int | None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    # selected guards that could not run for lack of configuration: code -> what is missing
    skipped: dict[str, str] = field(default_factory=dict)
    # guards that ran with part of their checks off for lack of configuration
    limited: dict[str, str] = field(default_factory=dict)
    config: str | None = None  # the modelward.toml read, if any

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in reversed(registry.SEVERITIES)}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def failing(self) -> list[Finding]:
        floor = registry.RANK[self.fail_on]
        return [f for f in self.findings if f.rank >= floor]

    def exit_code(self, *, exit_zero: bool = False) -> int:
        """0 when nothing reaches ``fail_on`` (or ``exit_zero``), 1 otherwise."""
        return 0 if exit_zero or not self.failing() else 1

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "now": iso(self.now),
            "since": iso(self.since),
            "fail_on": self.fail_on,
            "config": self.config,
            "guards_run": self.guards_run,
            "skipped": [{"code": c, "reason": r} for c, r in self.skipped.items()],
            "limited": [{"code": c, "reason": r} for c, r in self.limited.items()],
            "planned": self.planned,
            "summary": {**self.counts(), "suppressed": len(self.suppressed),
                        "failing": len(self.failing())},
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [{**f.to_dict(), "suppression": s.to_dict()}
                           for f, s in self.suppressed],
            "seconds": round(self.seconds, 3),
        }


def resolve_since(cfg: CheckConfig, since: int | None, now: int) -> int | None:
    """``since`` when given, else now minus the configured window, else None (all time)."""
    if since is not None:
        return since
    return now - cfg.window if cfg.window is not None else None


def guard_options(cfg: CheckConfig, settings: Settings) -> dict[str, dict]:
    """Validated options of every code (so a typo in an unselected table is still caught)."""
    source = str(settings.config_path) if settings.config_path else "modelward.toml"
    out = {}
    for row in registry.CODES:
        declared = registry.load(row.code).OPTIONS if row.status == "active" else ()
        out[row.code] = cfg.guard_options(row.code, declared, settings, source)
    return out


def run(store: Store, settings: Settings, *, select=None, ignore=None, fail_on=None,
        since: int | None = None, now: int | None = None,
        cfg: CheckConfig | None = None, progress=None, only=None,
        incremental=None) -> Report:
    """Run every selected guard; suppressions and the meta guards apply afterwards.
    ``progress(code, done, total)``, when given, is called before each guard runs.
    ``only``: of the selected guards, run just these codes (the watch's trigger);
    ``incremental``: a watch process's state (:class:`.incremental.Incremental`)."""
    t0 = time.perf_counter()
    cfg = cfg or check_config.load(settings, select=select, ignore=ignore, fail_on=fail_on)
    options = guard_options(cfg, settings)
    now = now_us() if now is None else now
    since = resolve_since(cfg, since, now)
    selected = [c for c in registry.CODES if cfg.selects(c.code)
                and (only is None or c.code in only)]
    planned = [c.code for c in selected if c.status != "active"]
    ledger_guards = [c for c in selected if c.status == "active" and not c.meta]
    meta_guards = [c for c in selected if c.status == "active" and c.meta]
    raw: list[Finding] = []
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    limited: dict[str, str] = {}
    with storage_errors(), store.read() as conn:
        acked = ledger_acks.active(conn, now)  # acknowledged findings count as suppressed
    with storage_errors(), View.open(store, settings, now=now, since=since,
                                     incremental=incremental) as view:
        total, first_meta = len(ledger_guards) + len(meta_guards), len(ledger_guards)
        for i, row in enumerate(ledger_guards):
            if progress is not None:
                progress(row.code, i, total)
            started = time.perf_counter()
            module = registry.load(row.code)
            # a guard that needs configuration it lacks says so instead of passing quietly
            unconfigured = getattr(module, "unconfigured", None)
            reason = unconfigured(view, options[row.code]) if unconfigured else None
            if reason:
                skipped[row.code] = reason
                continue
            limited_by = getattr(module, "limited", None)
            note = limited_by(view, options[row.code]) if limited_by else None
            if note:
                limited[row.code] = note
            raw += _apply_severity(module.check(view, options[row.code]), options[row.code])
            timings[row.code] = time.perf_counter() - started
        ledger_guards = [c for c in ledger_guards if c.code not in skipped]
        findings, suppressed = _suppress(raw, cfg.suppressions, now)
        findings, by_ack = _acknowledged(findings, acked)
        suppressed += by_ack
        view.suppressions = cfg.suppressions
        view.codes_run = {c.code for c in ledger_guards}
        for i, row in enumerate(meta_guards, start=first_meta):
            if progress is not None:
                progress(row.code, i, total)
            findings += _apply_severity(registry.load(row.code).check(view, options[row.code]),
                                        options[row.code])
    findings.sort(key=Finding.sort_key)
    return Report(findings=findings, suppressed=suppressed,
                  guards_run=[c.code for c in ledger_guards + meta_guards], planned=planned,
                  fail_on=cfg.fail_on, now=now, since=since,
                  seconds=time.perf_counter() - t0, timings=timings, skipped=skipped, limited=limited,
                  config=str(settings.config_path) if settings.config_path else None)


def run_guard(store: Store, settings: Settings, code: str, *, now: int | None = None,
              since: int | None = None, **opts) -> list[Finding]:
    """One guard alone, with ``opts`` as its [check.CODE] table (tests, the API)."""
    module = registry.load(code)
    cfg = CheckConfig(options={module.CODE: opts})
    validated = cfg.guard_options(module.CODE, module.OPTIONS, settings, "arguments")
    with storage_errors(), View.open(store, settings, now=now, since=since) as view:
        return sorted(_apply_severity(module.check(view, validated), validated),
                      key=Finding.sort_key)


def _apply_severity(found, opts: dict) -> list[Finding]:
    severity = opts.get("severity")
    return [replace(f, severity=severity) if severity else f for f in found]


def _suppress(findings: list[Finding], suppressions: list[Suppression], now: int):
    live = [s for s in suppressions if not s.expired(now)]
    kept, suppressed = [], []
    for f in findings:
        match = next((s for s in live if s.matches(f)), None)
        if match is None:
            kept.append(f)
        else:
            match.matched += 1
            suppressed.append((f, match))
    return kept, suppressed


def _acknowledged(findings: list[Finding], acked: dict):
    """Split off the findings an active ack in the ledger covers (:mod:`.acks`)."""
    if not acked:
        return findings, []
    from .acks import as_suppression

    kept, suppressed = [], []
    for f in findings:
        ack = acked.get(f.fingerprint)
        if ack is None:
            kept.append(f)
        else:
            s = as_suppression(ack)
            s.matched = 1
            suppressed.append((f, s))
    return kept, suppressed
