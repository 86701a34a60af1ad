"""Client-made decision ids: UUIDv7 (RFC 9562), time-ordered so retries dedupe and
indexes stay append-mostly."""

from __future__ import annotations

import hashlib
import re

from uuid_utils import uuid7 as _uuid7

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def uuid7() -> str:
    """A new UUIDv7 string, lower-case and hyphenated; monotonic within this process, across
    threads (uuid-utils, Rust's ``uuid`` crate: the 48-bit millisecond time, then a counter
    seeded at random each millisecond, so ids made in one millisecond still sort in the
    order they were made). ~0.3 µs where the pure-Python version took ~2 µs on the
    recorder's hot path."""
    return str(_uuid7())


def content_id(data: bytes) -> str:
    """A UUIDv8 (RFC 9562's custom version) made from the SHA-256 of ``data``: the id of a
    decision imported without one, so importing the same line again names the same id."""
    value = int.from_bytes(hashlib.sha256(b"modelward decision\n" + data).digest()[:16])
    value = (value & ~(0xF << 76) & ~(0b11 << 62)) | (0x8 << 76) | (0b10 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_uuid(text: object) -> bool:
    return isinstance(text, str) and _UUID.match(text) is not None


def decision_id(value: object, field: str = "decision_id") -> str:
    """``value`` as a decision id (a UUID, trimmed and lower-cased), or a ValidationError
    naming ``field``."""
    from .errors import ValidationError

    if not isinstance(value, str) or not is_uuid(value.strip().lower()):
        raise ValidationError(f"not a decision id: {str(value)[:80]!r}", field=field,
                              hint="decision ids are UUIDs, e.g. "
                              "0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70")
    return value.strip().lower()
