"""Every setting of modelward, declared once.

Precedence: an explicit value (CLI flag or ``open(**overrides)``) → ``MODELWARD_*``
environment variable → ``modelward.toml`` (table ``[modelward]``) → the default below.
Unknown keys are errors naming the key. The file is the first found of ``--config FILE``,
``$MODELWARD_CONFIG``, ``$MODELWARD_HOME/modelward.toml`` and ``./modelward.toml``
(:func:`find_config_file`): the configuration follows the ledger, not the directory a
command runs in.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, ValidationError
from .timefmt import parse_duration


@dataclass(frozen=True)
class Setting:
    name: str
    type: str  # "str" | "int" | "float" | "bool" | "duration" | "choice" | "list" (of str)
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None  # smallest valid value of an int/float/duration setting

    @property
    def env(self) -> str:
        return "MODELWARD_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "str", ".modelward", "Directory holding ledger.db and blobs/ by default."),
    Setting("database_url", "str", None,
            "SQLAlchemy URL of the ledger; default sqlite:///$MODELWARD_HOME/ledger.db "
            "(PostgreSQL: postgresql+psycopg://user@host/db)."),
    Setting("blob_url", "str", None,
            "The content-addressed blob store: a directory (or file:// URL), or an object "
            "store s3://bucket/prefix, gs://bucket/prefix, az://container/prefix "
            "(credentials from the cloud's standard environment, docs/team.md); default "
            "$MODELWARD_HOME/blobs."),
    Setting("cache_dir", "str", None,
            "Verified local copies of object-store payloads (what `.path()` and `modelward "
            "fetch` load) and their verification records; default $MODELWARD_HOME/cache."),
    Setting("recorder_mode", "choice", "batched",
            "batched: record() queues and a thread commits every flush_interval or "
            "flush_records; durable: record() returns after an fsynced spool append.",
            ("batched", "durable")),
    Setting("flush_interval", "duration", "50ms", "Longest a recorded decision waits in memory (batched mode)."),
    Setting("flush_records", "int", 2000, "Flush as soon as this many decisions are queued; also the largest chain block.",
            minimum=1),
    Setting("queue_limit", "int", 200_000,
            "Most decisions held in memory; record() blocks (back-pressure) beyond it.",
            minimum=1),
    Setting("spool_dir", "str", None, "Directory of durable-mode spool files; default $MODELWARD_HOME/spool."),
    Setting("retention", "duration", "400d", "Decisions younger than this keep the artifacts they name."),
    Setting("gc_grace", "duration", "7d",
            "`modelward gc` never deletes the payload of an artifact registered more recently "
            "than this (a new candidate not yet aliased or used)."),
    Setting("verify_cache_ttl", "duration", "24h",
            "How long a full payload or chain-block verification is trusted while the files "
            "are unchanged (audit, retention); 0s rehashes every time."),
    Setting("check_rollups", "bool", True,
            "Guards that count decisions (MW101, MW102, MW104, MW105, MW301, MW502) read the "
            "per-block rollups instead of every decision; false reads the decisions (same "
            "findings, slower)."),
    Setting("stale_fleet_grace", "duration", "30m",
            "How long after an alias moves decisions may still name its previous digest (MW105)."),
    Setting("evidence_max_age", "duration", "30d",
            "Oldest an eval run may be to back a promotion (`modelward promote approve`) or a "
            "live alias (MW202).", minimum=1),
    Setting("findings_max_age", "duration", "60s",
            "The dashboard's findings page (and GET /api/v1/findings/latest) shows the latest "
            "recorded guard run and starts a new one in the background when that run is older "
            "than this.", minimum=1),
    Setting("check_runs_kept", "int", 100,
            "Guard runs (`modelward check`, the dashboard) whose findings stay in the ledger; "
            "older runs are dropped, the findings' lifecycle (opened, last seen, resolved) "
            "stays.", minimum=2),
    Setting("min_review_time", "duration", "5m",
            "An approval sooner than this after the reviewer opened the evidence (or after the "
            "request, when nothing was opened) is implausibly fast (MW203).", minimum=0),
    Setting("signing_key_env", "str", "MODELWARD_SIGNING_KEY",
            "Environment variable holding the HMAC key that signs `modelward chain head` "
            "(one party); when it is set, `chain check` refuses unsigned heads."),
    Setting("signing_key_file", "str", None,
            "PEM Ed25519 private key that signs `modelward chain head` (`modelward chain "
            "keygen`); its public half also checks heads."),
    Setting("verify_key_file", "str", None,
            "PEM Ed25519 public key that `modelward chain check` verifies heads with; when "
            "set, unsigned heads are refused."),
    Setting("actor", "str", None,
            "Who you are on the CLI (an e-mail): the actor of alias moves, promotion "
            "requests and approvals when --actor/--as is not given; default `git config "
            "user.email`. With none of them, moves and approvals are refused."),
    Setting("clock_skew", "duration", "5m",
            "How far after the moment it is recorded a decision's or an exposure's `at` (or "
            "an alias move's time) may lie: beyond it the recording host's clock is wrong and "
            "the write is refused.", minimum=0),
    Setting("ingest_window", "duration", None,
            "When set, a decision dated further back than this before the moment it is "
            "recorded is refused (a host whose clock runs slow); unset, any past time is "
            "accepted (imports and spool replays record the past).", minimum=1),
    Setting("docs_url", "str", None,
            "Base URL of the guard pages (docs/guards/MWxxx.md) that SARIF rules link as "
            "helpUri, e.g. https://github.com/ORG/REPO/blob/main/docs/guards/; unset, each "
            "rule carries its guard's documentation inline (help.text, help.markdown)."),
    Setting("process_name", "str", None, "Name this serving process reports on its decisions; default host:pid."),
    Setting("max_body", "int", 1 << 20,
            "`modelward serve`: largest request body (bytes) of a route that declares no other "
            "limit (JSON writes such as alias moves, tokens, promotions, the log-in form); "
            "larger bodies get 413 before they are read.", minimum=1024),
    Setting("max_batch_body", "int", 64 << 20,
            "`modelward serve`: largest body (bytes) of a batch write (POST /api/v1/decisions, "
            "POST /api/v1/feedback, POST /api/v1/experiments/{name}/exposures).",
            minimum=1024),
    Setting("max_otlp_body", "int", 32 << 20,
            "`modelward serve`: largest body (bytes, as sent, compressed or not) of POST "
            "/v1/traces.", minimum=1024),
    Setting("max_otlp_decompressed", "int", 128 << 20,
            "`modelward serve`: largest a gzip OTLP body may grow to when decompressed "
            "(bytes); beyond it, or beyond max_decompression_ratio, 413.", minimum=1024),
    Setting("max_decompression_ratio", "int", 100,
            "`modelward serve`: most bytes a gzip body may decompress to per byte received "
            "(checked once the output passes 1 MiB): refuses decompression bombs early.",
            minimum=1),
    Setting("max_upload", "int", 2 << 30,
            "`modelward serve`: largest multipart upload (bytes) to POST /api/v1/artifacts; "
            "register larger payloads with `modelward register` on a host that sees the file.",
            minimum=1024),
    Setting("watch_interval", "duration", None,
            "`modelward serve`: run the guards in the server (after writes seal new blocks, "
            "at most every `watch_min_gap`, and at least this often), recording each run and sending "
            "its alerts, as `modelward watch` does; unset, the server runs them only for the "
            "findings page.", minimum=1),
    Setting("watch_min_gap", "duration", "10s",
            "`modelward serve --watch`: after writes seal new blocks, wait at least this long "
            "since the last guard run (`modelward watch --min-gap`).", minimum=0),
    Setting("metrics_listen", "str", None,
            "`modelward serve`: HOST:PORT where /metrics is also served without a token, "
            "for a network only Prometheus reaches (one worker process only); unset, "
            "/metrics is served on the API port to any live token."),
    Setting("allowed_origins", "list", None,
            "`modelward serve`: origins besides the server's own (the Host it is reached by) "
            "allowed to send dashboard form posts, e.g. the public https://… origin of a "
            "reverse proxy that rewrites Host."),
    Setting("umask", "str", "077",
            "Octal umask for the files modelward creates (ledger.db with its WAL/SHM, spool "
            "segments, blobs): the default keeps raw decision text readable by the owner only."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
# Top-level tables of modelward.toml; each is validated by the module that reads it.
KNOWN_TABLES = {"modelward", "check", "contamination", "alerts"}


REMOTE_SCHEMES = ("s3://", "s3a://", "gs://", "gcs://", "az://", "azure://", "abfs://",
                  "abfss://", "adl://", "https://", "http://", "memory://")


def is_remote(url: str) -> bool:
    """Does ``url`` name an object store (rather than a local directory)?"""
    return str(url).lower().startswith(REMOTE_SCHEMES)


def coerce(setting: Setting, value: Any, source: str) -> Any:
    value = _coerce(setting, value, source)
    if setting.minimum is not None and value is not None and value < setting.minimum:
        raise ConfigError(f"{setting.name} from {source} is {value!r}; it must be at least "
                          f"{setting.minimum}")
    return value


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    if value is None:
        return None
    try:
        if setting.type == "list":  # of strings: a TOML array, or comma-separated text
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return list(value)
        if setting.type in ("str",):
            if not isinstance(value, (str, os.PathLike)):  # e.g. a TOML number or list
                raise ValueError
            return str(value)
        if setting.type == "int":
            # int(2.5) would silently truncate a TOML float
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if setting.type == "float":
            number = float(value)
            if not math.isfinite(number):  # "nan" and "inf" parse as floats
                raise ValueError
            return number
        if setting.type == "bool":
            if isinstance(value, bool):
                return value
            low = str(value).lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if setting.type == "duration":
            return parse_duration(value, field=setting.name)
        if setting.type == "choice":
            if value not in setting.choices:
                raise ConfigError(
                    f"{setting.name} from {source} is {value!r}; choose one of "
                    + ", ".join(setting.choices)
                )
            return value
    except (ValueError, ValidationError):
        raise ConfigError(
            f"{setting.name} from {source} is not a valid {setting.type}: {value!r}"
        ) from None
    raise ConfigError(f"unknown setting type {setting.type}")


def find_config_file(start: Path | None = None, *, home: str | os.PathLike | None = None,
                     explicit: str | os.PathLike | None = None,
                     env: dict | None = None) -> Path | None:
    """The modelward.toml to read, first found of: ``explicit`` (``--config FILE``), the file
    ``MODELWARD_CONFIG`` names, ``modelward.toml`` in the ledger's home (``home``, else
    ``MODELWARD_HOME``, else ``./.modelward``), ``modelward.toml`` in ``start`` (the working
    directory). The config follows the ledger: ``MODELWARD_HOME=demo-ledger modelward
    check`` reads demo-ledger/modelward.toml from any directory."""
    env = os.environ if env is None else env
    for value, what in ((explicit, "--config"), (env.get("MODELWARD_CONFIG"), "MODELWARD_CONFIG")):
        if value:
            path = Path(value)
            if not path.is_file():
                raise ConfigError(f"{what} names {path}, which does not exist")
            return path
    home = home or env.get("MODELWARD_HOME") or _BY_NAME["home"].default
    for path in (Path(home) / "modelward.toml", (start or Path.cwd()) / "modelward.toml"):
        if path.is_file():
            return path
    return None


def load_toml(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


class Settings:
    """Resolved settings; attribute access by setting name."""

    def __init__(self, overrides: dict | None = None, *, config_path: Path | None = None,
                 env: dict | None = None) -> None:
        env = os.environ if env is None else env
        home = (overrides or {}).get("home")
        self.config_path = find_config_file(home=home, explicit=config_path, env=env)
        self.document = load_toml(self.config_path)
        for key in self.document:
            if key not in KNOWN_TABLES:
                raise ConfigError(f"{self.config_path}: unknown table [{key}]",
                                  hint="known tables: " + ", ".join(sorted(KNOWN_TABLES)))
        table = self.document.get("modelward", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{self.config_path}: [modelward] must be a table")
        for key in table:
            if key not in _BY_NAME:
                raise ConfigError(f"{self.config_path}: unknown key modelward.{key}",
                                  hint="known keys: " + ", ".join(_BY_NAME))
        overrides = dict(overrides or {})
        for key in overrides:
            if key not in _BY_NAME:
                raise ConfigError(f"unknown setting {key!r}", hint="known: " + ", ".join(_BY_NAME))
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        for s in SETTINGS:
            if overrides.get(s.name) is not None:
                value, source = overrides[s.name], "argument"
            elif env.get(s.env) not in (None, ""):
                value, source = env[s.env], s.env
            elif s.name in table:
                value, source = table[s.name], str(self.config_path)
            else:
                value, source = s.default, "default"
            self._values[s.name] = coerce(s, value, source)
            self._sources[s.name] = source
        try:
            self.umask_bits  # noqa: B018 - validated now, not at the first file created
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from {self._sources['umask']})") from None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def source(self, name: str) -> str:
        return self._sources[name]

    @property
    def umask_bits(self) -> int:
        """``umask`` as an int (validated when the settings are read)."""
        from .filemodes import parse_umask

        return parse_umask(self.umask)

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home_path / 'ledger.db').resolve()}"

    @property
    def blob_location(self) -> str:
        """The blob store as configured: an object-store URL or a local directory."""
        if self.blob_url and is_remote(self.blob_url):
            return self.blob_url
        return str(self.blob_path)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.home_path / "cache"

    @property
    def blob_path(self) -> Path:
        """The blob directory (a local blob store only)."""
        if self.blob_url:
            url = self.blob_url
            return Path(url[len("file://"):] if url.startswith("file://") else url)
        return self.home_path / "blobs"

    @property
    def spool_path(self) -> Path:
        return Path(self.spool_dir) if self.spool_dir else self.home_path / "spool"

    def section(self, name: str) -> dict:
        """Another table of modelward.toml (e.g. ``check``), validated by its reader."""
        value = self.document.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.config_path}: [{name}] must be a table")
        return value


def settings_markdown() -> str:
    """docs/settings.md, generated from SETTINGS so the reference cannot drift."""
    lines = [
        "# Settings",
        "",
        "<!-- generated by `python -m modelward.settings`; edit settings.py instead -->",
        "",
        "Precedence: a CLI flag (or an argument to `modelward.open()`) → the `MODELWARD_*`",
        "environment variable → the `[modelward]` table of `modelward.toml` → the default.",
        "Unknown keys and tables are errors that name the key.",
        "",
        "Which `modelward.toml` is read: the first found of",
        "",
        "1. `--config FILE` (a global option of the CLI: `modelward --config FILE check`);",
        "2. the file named by `MODELWARD_CONFIG`;",
        "3. `modelward.toml` in the ledger's home (`--home`, else `MODELWARD_HOME`, else",
        "   `./.modelward`), so the configuration follows the ledger wherever a command runs;",
        "4. `modelward.toml` in the working directory.",
        "",
        "A file named by `--config` or `MODELWARD_CONFIG` must exist. `modelward check`",
        "prints the file it read (`config: …`). Paths inside the file (a pre-period CSV, a",
        "contamination pool) are relative to the file.",
        "",
        "| setting | environment | type | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        kind = s.type + (f" ({', '.join(s.choices)})" if s.choices else "")
        default = "—" if s.default is None else f"`{s.default}`"
        lines.append(f"| `{s.name}` | `{s.env}` | {kind} | {default} | {s.help} |")
    lines += ["", "Other tables of `modelward.toml`: " + ", ".join(
        f"`[{t}]`" for t in sorted(KNOWN_TABLES - {"modelward"})) + " (see docs/check.md and the "
        "docs of the feature that reads each).", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(settings_markdown(), end="")
