"""Time as modelward stores it: integer microseconds since the Unix epoch, UTC.

Integers sort, compare and index the same way on SQLite and PostgreSQL and never lose
precision; every surface shows them as ISO 8601 with an explicit offset.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from .errors import ValidationError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d|w)\s*$")
_UNITS_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return time.time_ns() // 1000


def to_us(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValidationError("timestamp has no UTC offset", hint="write e.g. 2026-03-01T12:00:00Z")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def iso(us: int | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z, microseconds kept only when present."""
    if us is None:
        return None
    dt = from_us(us)
    # explicit zero-padding: strftime("%Y") drops it before year 1000 on glibc
    text = (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
            f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def parse_time(value: object, *, field: str = "at") -> int:
    """Parse an ISO 8601 string (offset required), a datetime, or integer microseconds."""
    if isinstance(value, bool):
        raise ValidationError(f"expected an ISO 8601 timestamp, got {value!r}", field=field)
    if isinstance(value, int):
        # Bounded to what a datetime can show: a larger int would overflow BIGINT at insert
        # (poisoning a whole recorder batch) and iso() afterwards.
        if not MIN_US <= value <= MAX_US:
            raise ValidationError(f"{value} microseconds is outside years 1-9999", field=field)
        return value
    if isinstance(value, datetime):
        try:
            return to_us(value)
        except ValidationError as exc:
            raise ValidationError(exc.message, field=field, hint=exc.hint) from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                f"not an ISO 8601 timestamp: {value!r}",
                field=field,
                hint="write e.g. 2026-03-01T12:00:00Z",
            ) from None
        if dt.tzinfo is None:
            raise ValidationError(
                f"timestamp {value!r} has no UTC offset",
                field=field,
                hint="append Z or an offset such as +02:00",
            )
        return to_us(dt)
    raise ValidationError(
        f"expected an ISO 8601 timestamp, got {type(value).__name__}", field=field
    )


def parse_duration(value: object, *, field: str = "duration") -> int:
    """Parse '50ms', '6h', '400d' (or integer microseconds) into microseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return int(float(m.group(1)) * _UNITS_US[m.group(2)])
    raise ValidationError(
        f"not a duration: {value!r}", field=field, hint="write e.g. 50ms, 30m, 6h, 400d"
    )


def parse_when(value: object, *, now: int | None = None, field: str = "at") -> int | None:
    """The one parser of ``--since``, ``--until``, ``--at`` and the API's ``since``,
    ``until`` and ``at``: an ISO 8601 time (offset required), integer microseconds, or a
    duration counted back from ``now`` (``7d`` is seven days ago). ``None`` stays ``None``.
    A duration reaching before year 1 is refused like any time out of range."""
    if value is None:
        return None
    if isinstance(value, str) and _DURATION.match(value):
        at = (now_us() if now is None else now) - parse_duration(value, field=field)
        if at < MIN_US:
            raise ValidationError(f"{value.strip()} back from now is before year 1", field=field)
        return at
    try:
        return parse_time(value, field=field)
    except ValidationError as exc:
        if not isinstance(value, str) or "UTC offset" in exc.detail:
            raise
        raise ValidationError(f"not an ISO 8601 time or a duration: {value!r}", field=field,
                              hint="write a time such as 2026-03-01T12:00:00Z, or a "
                                   "duration back from now such as 7d") from None
