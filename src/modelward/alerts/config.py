"""``[alerts]`` of modelward.toml: the dashboard URL and the notification channels."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..guards.registry import RANK, SEVERITIES
from ..settings import Settings

KINDS = ("webhook", "slack", "alertmanager")
TOP_KEYS = ("dashboard_url", "channels")
CHANNEL_KEYS = ("name", "kind", "url", "secret_env", "codes", "min_severity", "timeout",
                "max_attempts")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_CODE_PREFIX = re.compile(r"^MW\d{0,3}$")


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    url: str
    secret: str | None = None  # the webhook's HMAC key, read from secret_env
    codes: tuple[str, ...] = ("MW",)
    min_severity: str = "warning"
    timeout: float = 5.0
    max_attempts: int = 5

    def routes(self, code: str, severity: str) -> bool:
        """Whether a finding of ``code`` at ``severity`` goes to this channel."""
        return (any(code.startswith(p) for p in self.codes)
                and RANK.get(severity, -1) >= RANK[self.min_severity])


@dataclass(frozen=True)
class AlertConfig:
    channels: tuple[Channel, ...] = ()
    dashboard_url: str | None = None
    source: str = "modelward.toml"
    names: dict = field(default_factory=dict)

    def channel(self, name: str) -> Channel:
        for c in self.channels:
            if c.name == name:
                return c
        raise ConfigError(f"{self.source}: no alert channel named {name!r}",
                          hint="channels: " + (", ".join(c.name for c in self.channels)
                                               or "none configured ([[alerts.channels]])"))


def _url(value, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{where} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def load(settings: Settings) -> AlertConfig:
    """The ``[alerts]`` table, validated; every problem names its key."""
    path = settings.config_path
    source = str(path) if path else "modelward.toml"
    table = settings.section("alerts")
    for key in table:
        if key not in TOP_KEYS:
            raise ConfigError(f"{source}: unknown key alerts.{key}",
                              hint="known keys: " + ", ".join(TOP_KEYS))
    dashboard = (_url(table["dashboard_url"], f"{source}: alerts.dashboard_url")
                 if "dashboard_url" in table else None)
    raw = table.get("channels", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise ConfigError(f"{source}: alerts.channels must be tables ([[alerts.channels]])")
    channels, seen = [], set()
    for i, c in enumerate(raw):
        channels.append(_channel(c, f"{source}: alerts.channels[{i}]", seen))
    return AlertConfig(tuple(channels), dashboard, source)


def _channel(c: dict, where: str, seen: set) -> Channel:
    for key in c:
        if key not in CHANNEL_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}",
                              hint="known keys: " + ", ".join(CHANNEL_KEYS))
    name = c.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name must be letters, digits, '_', '.', '-' (got "
                          f"{name!r})")
    if name in seen:
        raise ConfigError(f"{where}.name {name!r} is used twice")
    seen.add(name)
    kind = c.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(KINDS)} (got {kind!r})")
    url = _url(c.get("url"), f"{where}.url")
    secret = None
    if kind == "webhook":
        env = c.get("secret_env")
        if not isinstance(env, str) or not env:
            raise ConfigError(f"{where}: a webhook channel needs secret_env, the environment "
                              "variable holding its HMAC key (every message is signed)")
        secret = os.environ.get(env)
        if not secret:
            raise ConfigError(f"{where}: ${env} (secret_env) is not set",
                              hint="set it to the key the receiver checks signatures with")
    codes = c.get("codes", ["MW"])
    if (not isinstance(codes, list) or not codes
            or not all(isinstance(p, str) and _CODE_PREFIX.match(p.upper()) for p in codes)):
        raise ConfigError(f"{where}.codes must be a list of guard-code prefixes like "
                          f"\"MW1\" or \"MW105\" (got {codes!r})")
    severity = c.get("min_severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}.min_severity must be one of {', '.join(SEVERITIES)} "
                          f"(got {severity!r})")
    timeout = c.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= 60:
        raise ConfigError(f"{where}.timeout must be seconds in (0, 60] (got {timeout!r})")
    attempts = c.get("max_attempts", 5)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 50:
        raise ConfigError(f"{where}.max_attempts must be 1 to 50 (got {attempts!r})")
    return Channel(name, kind, url, secret, tuple(p.upper() for p in codes), severity,
                   float(timeout), attempts)
