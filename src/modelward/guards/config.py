"""The ``[check]`` table of modelward.toml, merged with command-line options.

::

    [check]
    select = ["MW1"]            # code prefixes; default ["MW"] (everything)
    ignore = ["MW104"]          # the longest matching prefix wins; ignore wins a tie
    fail_on = "warning"         # info | warning | error
    window = "30d"              # only decisions this recent (--since overrides)

    [check.MW105]               # per-guard options, plus `severity` for every guard
    grace = "1h"

    [[check.suppress]]
    code = "MW105"
    subject = "chat/*"          # glob on the finding's subject, and/or
    fingerprint = "9f2c…"       # the finding's fingerprint
    reason = "batch workers pin the old model until the nightly restart"
    expires = 2026-06-30        # a date; from that day on it no longer applies
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from ..errors import ConfigError, ValidationError
from ..settings import Setting, Settings, coerce
from ..timefmt import iso, parse_duration, parse_time, to_us
from . import registry
from .finding import Finding

TOP_KEYS = ("select", "ignore", "fail_on", "window", "suppress")
SUPPRESS_KEYS = ("code", "subject", "fingerprint", "reason", "expires")
_PREFIX = re.compile(r"^MW\d{0,3}$")
_CODE_TABLE = re.compile(r"^MW\d{3}$", re.IGNORECASE)
SEVERITY_OPTION = Setting("severity", "choice", None,
                          "Report this guard's findings at this severity instead of its default.",
                          registry.SEVERITIES)


@dataclass
class Suppression:
    index: int  # 1-based position among [[check.suppress]] entries
    code: str
    reason: str
    subject: str | None = None
    fingerprint: str | None = None
    expires_at: int | None = None
    matched: int = 0

    def expired(self, now: int) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def matches(self, finding: Finding) -> bool:
        return (finding.code == self.code
                and (self.subject is None or fnmatchcase(finding.subject, self.subject))
                and (self.fingerprint is None or finding.fingerprint == self.fingerprint))

    def describe(self) -> str:
        parts = [self.code]
        if self.subject is not None:
            parts.append(f"subject {self.subject!r}")
        if self.fingerprint is not None:
            parts.append(f"fingerprint {self.fingerprint}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {"index": self.index, "code": self.code, "subject": self.subject,
                "fingerprint": self.fingerprint, "reason": self.reason,
                "expires": iso(self.expires_at)}


@dataclass
class CheckConfig:
    select: list[str] = field(default_factory=lambda: ["MW"])
    ignore: list[str] = field(default_factory=list)
    fail_on: str = "warning"
    window: int | None = None  # microseconds
    suppressions: list[Suppression] = field(default_factory=list)
    options: dict[str, dict] = field(default_factory=dict)  # code -> raw table
    # (prefix, selected?, layer): layer 0 is modelward.toml, 1 the command line
    rules: list[tuple[str, bool, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rules:
            self.rules = [(p, True, 0) for p in self.select] + [(p, False, 0) for p in self.ignore]

    def selects(self, code: str) -> bool:
        """The longest matching prefix wins; at equal length the command line beats the
        file, then ignore beats select. No matching prefix: not selected."""
        best, chosen = None, False
        for prefix, verdict, layer in self.rules:
            if code.startswith(prefix):
                key = (len(prefix), layer, not verdict)
                if best is None or key > best:
                    best, chosen = key, verdict
        return chosen

    def guard_options(self, code: str, declared: tuple[Setting, ...], settings: Settings,
                      source: str = "modelward.toml") -> dict:
        """The validated options of one guard, defaults filled in."""
        table = self.options.get(code, {})
        known = {s.name: s for s in (*declared, SEVERITY_OPTION)}
        for key in table:
            if key not in known:
                raise ConfigError(f"{source}: unknown key check.{code}.{key}",
                                  hint="known keys: " + ", ".join(known))
        return {name: coerce(s, table.get(name, s.default), f"[check.{code}] in {source}")
                for name, s in known.items()}


def parse_prefixes(value, where: str) -> list[str]:
    """Code prefixes from a TOML array or a comma-separated string; each must match a code."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of code prefixes such as MW1 or MW105")
    out = []
    for raw in value:
        p = raw.strip().upper()
        if not p:
            continue
        if not _PREFIX.match(p) or not any(c.startswith(p) for c in registry.BY_CODE):
            raise ConfigError(f"{where}: {raw.strip()!r} matches no guard code",
                              hint="prefixes look like MW, MW1, MW10 or MW105; "
                                   "see `modelward guards`")
        out.append(p)
    return out


def parse_fail_on(value, where: str) -> str:
    if value not in registry.SEVERITIES:
        raise ConfigError(f"{where} is {value!r}; choose one of info, warning, error")
    return value


def _expiry(value, where: str) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return to_us(value)
    if isinstance(value, dt.date):
        return to_us(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return _expiry(dt.date.fromisoformat(text), where)
            return parse_time(text)
        except (ValueError, ValidationError):
            pass
    raise ConfigError(f"{where} is not a date: {value!r}", hint="write e.g. expires = 2026-06-30")


def _suppressions(entries, source: str) -> list[Suppression]:
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: check.suppress must be an array of tables "
                          "([[check.suppress]])")
    out = []
    for i, entry in enumerate(entries, start=1):
        where = f"{source}: check.suppress[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        for key in entry:
            if key not in SUPPRESS_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r}",
                                  hint="known keys: " + ", ".join(SUPPRESS_KEYS))
        code = entry.get("code")
        if not isinstance(code, str) or code.strip().upper() not in registry.BY_CODE:
            raise ConfigError(f"{where}.code must name a guard code, got {code!r}")
        code = code.strip().upper()
        if registry.BY_CODE[code].meta:
            raise ConfigError(f"{where}.code: {code} reports on suppressions and cannot itself "
                              "be suppressed", hint=f'add "{code}" to check.ignore instead')
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}.reason is required: say why the finding is accepted")
        subject, fingerprint = entry.get("subject"), entry.get("fingerprint")
        if subject is None and fingerprint is None:
            raise ConfigError(f"{where} needs a subject or a fingerprint",
                              hint=f'to silence all of {code}, add it to check.ignore')
        for key, value in (("subject", subject), ("fingerprint", fingerprint)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{where}.{key} must be a non-empty string")
        expires = entry.get("expires")
        out.append(Suppression(
            index=i, code=code, reason=reason.strip(), subject=subject,
            fingerprint=fingerprint.strip().lower() if fingerprint else None,
            expires_at=None if expires is None else _expiry(expires, f"{where}.expires")))
    return out


def load(settings: Settings, *, select=None, ignore=None, fail_on=None) -> CheckConfig:
    """Read ``[check]`` and apply command-line options: ``select`` replaces the file's
    select, ``ignore`` adds to its ignore, ``fail_on`` replaces fail_on."""
    path: Path | None = settings.config_path
    source = str(path) if path else "modelward.toml"
    table = settings.section("check")
    cfg = CheckConfig()
    for key, value in table.items():
        if key in TOP_KEYS:
            continue
        if _CODE_TABLE.match(key):
            code = key.upper()
            if code not in registry.BY_CODE:
                raise ConfigError(f"{source}: [check.{key}] names no guard code",
                                  hint="see `modelward guards`")
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: check.{key} must be a table ([check.{code}])")
            cfg.options[code] = value
            continue
        raise ConfigError(f"{source}: unknown key check.{key}",
                          hint="known keys: " + ", ".join(TOP_KEYS) + ", and [check.MWxxx] tables")
    if "select" in table:
        cfg.select = parse_prefixes(table["select"], f"{source}: check.select")
    if "ignore" in table:
        cfg.ignore = parse_prefixes(table["ignore"], f"{source}: check.ignore")
    if "fail_on" in table:
        cfg.fail_on = parse_fail_on(table["fail_on"], f"{source}: check.fail_on")
    if "window" in table:
        try:
            cfg.window = parse_duration(table["window"])
        except ValidationError:
            raise ConfigError(f"{source}: check.window is not a duration: {table['window']!r}",
                              hint="write e.g. window = \"30d\"") from None
    if "suppress" in table:
        cfg.suppressions = _suppressions(table["suppress"], source)
    cli_select = parse_prefixes(select, "--select") if select is not None else None
    cli_ignore = parse_prefixes(ignore, "--ignore") if ignore is not None else []
    # --select replaces the file's select; --ignore adds to the file's ignore
    cfg.rules = ([] if cli_select is not None else [(p, True, 0) for p in cfg.select])
    cfg.rules += [(p, False, 0) for p in cfg.ignore]
    cfg.rules += [(p, True, 1) for p in cli_select or []] + [(p, False, 1) for p in cli_ignore]
    if cli_select is not None:
        cfg.select = cli_select
    cfg.ignore = cfg.ignore + cli_ignore
    if fail_on is not None:
        cfg.fail_on = parse_fail_on(fail_on, "--fail-on")
    return cfg
