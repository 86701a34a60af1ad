"""Acknowledging and snoozing findings: the one function behind ``modelward findings
ack|unack`` and ``POST|DELETE /api/v1/findings/{key}/ack``.

An ack names the finding by its key (the fingerprint ``modelward check --format json``
and the findings page show), the person (an e-mail), a reason (required) and optionally
``until`` (a snooze: an ISO 8601 time or a duration from now, such as ``7d``; at most
:data:`MAX_AHEAD` ahead). Without ``until`` it lasts until the finding resolves. While an
ack is active, ``modelward check`` counts the finding as suppressed (not failing) and no
alert announces it; when it expires or is revoked, the finding fails ``check`` again and,
if still open, is announced once more (see :mod:`modelward.alerts.deliver`).
"""

from __future__ import annotations

import re

from ..errors import ConflictError, NotFoundError, ValidationError
from ..ledger import acks as ledger_acks
from ..ledger import findings as ledger_findings
from ..ledger.engine import Store
from ..timefmt import iso, now_us, parse_duration, parse_time
from .config import Suppression
from .finding import Finding

MAX_REASON = 500
MAX_AHEAD = 365 * 86_400 * 1_000_000  # a snooze of at most a year
KEY = re.compile(r"[0-9a-f]{8,64}\Z")
_DURATION = re.compile(r"\s*\d+(\.\d+)?\s*(us|ms|s|m|h|d|w)\s*\Z")


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise ValidationError(f"not a finding key: {str(key)[:80]!r}", field=field,
                              hint="the fingerprint of a finding (hex), as `modelward "
                                   "findings list` shows it")
    return key


def check_reason(reason: object, field: str = "reason") -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationError("a reason is required: say why this finding may be silenced",
                              field=field)
    if len(text) > MAX_REASON:
        raise ValidationError(f"a reason is at most {MAX_REASON} characters, got {len(text)}",
                              field=field)
    if any(ord(c) < 32 and c not in "\t\n" or c == "\x7f" for c in text):
        raise ValidationError("the reason holds control characters", field=field)
    return text


def parse_until(value: object, now: int, field: str = "until") -> int | None:
    """``None``, an ISO 8601 time, or a duration counted *forward* from ``now``; it must
    lie in the future and at most a year ahead."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and _DURATION.match(value):
        at = now + parse_duration(value, field=field)
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        at = parse_time(value, field=field)
    else:
        raise ValidationError(f"not a time or duration: {str(value)[:80]!r}", field=field)
    if at <= now:
        raise ValidationError(f"{field} {iso(at)} is not in the future", field=field,
                              hint="write a duration such as 7d, or a later time")
    if at - now > MAX_AHEAD:
        raise ValidationError(f"{field} is more than a year ahead", field=field,
                              hint="snooze for at most 365d, then acknowledge again")
    return at


def acknowledge(store: Store, key: str, *, actor: str, reason: str,
                until: object = None, now: int | None = None) -> ledger_acks.Ack:
    """Acknowledge open finding ``key`` as ``actor``. Refused (ConflictError) when it is
    resolved or already acknowledged; NotFoundError when no guard run showed it."""
    now = now_us() if now is None else now
    key = check_key(key)
    reason = check_reason(reason)
    until_at = parse_until(until, now)
    with store.write() as conn:
        state = ledger_findings.lifecycles(conn, [key]).get(key)
        if state is None:
            raise NotFoundError(f"no finding {key}: no recorded guard run showed it",
                                hint="`modelward findings list` shows the findings' keys")
        if state.resolved_at is not None:
            raise ConflictError(f"finding {key} is resolved ({iso(state.resolved_at)}); "
                                "there is nothing to acknowledge")
        current = ledger_acks.active(conn, now, [key]).get(key)
        if current is not None:
            raise ConflictError(
                f"finding {key} is already acknowledged by {current.actor}"
                + (f" until {iso(current.until)}" if current.until else ""),
                hint="unacknowledge it first to change the reason or expiry")
        return ledger_acks.add(conn, key=key, code=state.code, actor=actor, reason=reason,
                               at=now, until=until_at)


def unacknowledge(store: Store, key: str, *, actor: str,
                  now: int | None = None) -> ledger_acks.Ack:
    """Revoke the active ack of finding ``key``; returns it as revoked."""
    now = now_us() if now is None else now
    key = check_key(key)
    with store.write() as conn:
        current = ledger_acks.active(conn, now, [key]).get(key)
        if current is None:
            raise NotFoundError(f"finding {key} has no active acknowledgement")
        ledger_acks.revoke(conn, [current.id], by=actor, at=now)
        return ledger_acks.get(conn, current.id)


def as_suppression(ack: ledger_acks.Ack) -> Suppression:
    """An active ack as ``check`` reports it among the suppressed (index 0: not a
    [[check.suppress]] entry)."""
    s = AckSuppression(index=0, code=ack.code, reason=ack.reason,
                       fingerprint=ack.finding_key, expires_at=ack.until)
    s.ack = ack
    return s


class AckSuppression(Suppression):
    """A suppression that comes from an acknowledgement in the ledger."""

    ack: ledger_acks.Ack | None = None

    def matches(self, finding: Finding) -> bool:
        return finding.fingerprint == self.fingerprint

    def to_dict(self) -> dict:
        return {**super().to_dict(), "acknowledged_by": self.ack.actor if self.ack else None,
                "acknowledged_at": iso(self.ack.created_at) if self.ack else None}


def lifecycle_item(r: dict) -> dict:
    """One lifecycle row (:func:`modelward.ledger.findings.by_state`) as the API shows it."""
    ack = r.get("ack")
    shown = "resolved" if r["resolved_at"] else "acknowledged" if ack else "open"
    return {"key": r["key"], "code": r["code"], "severity": r["severity"],
            "subject": r["subject"], "message": r["message"], "fix": r["fix"],
            "state": shown, "opened_at": iso(r["opened_at"]), "opened_run": r["opened_run"],
            "last_seen_at": iso(r["last_seen_at"]), "last_run": r["last_run"],
            "runs": r["runs"], "resolved_at": iso(r["resolved_at"]),
            "resolved_run": r["resolved_run"],
            "acknowledged_by": ack.actor if ack else None,
            "acknowledged_at": iso(ack.created_at) if ack else None,
            "ack_reason": ack.reason if ack else None,
            "ack_until": iso(ack.until) if ack else None}
