"""Client-made decision ids: UUIDv7 (RFC 9562), time-ordered so retries dedupe and
indexes stay append-mostly."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7() -> str:
    """A new UUIDv7 string; monotonic within this process (a 12-bit counter in rand_a)."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # counter spent inside one millisecond: borrow the next one
                ms += 1
                _seq = 0
        else:
            _seq = int.from_bytes(os.urandom(2)) & 0x3FF
        _last_ms = ms
        seq = _seq
    rand = int.from_bytes(os.urandom(8)) & 0x3FFFFFFFFFFFFFFF
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
