"""Queue a run's transitions for each routed channel and send the queue.

One delivery per (channel, finding, transition, run): a finding that stays open sends
nothing more, however many decisions it affects. Each due delivery is tried up to three
times in a row with a short backoff (0.5 s, 1 s), then left pending with a longer one
(2^attempts seconds, at most 5 minutes) for the next dispatch, and marked failed after the
channel's ``max_attempts``. Every attempt's outcome is recorded on its row.

Webhook messages are signed: ``X-Modelward-Signature: v1=<hex HMAC-SHA256>`` over
``"<timestamp>.<delivery id>." + body`` with the channel's secret, the timestamp in
``X-Modelward-Timestamp`` (Unix seconds) and the id in ``X-Modelward-Delivery``, so a
receiver can check the sender, refuse stale timestamps and drop a replayed id.
Alertmanager keeps an alert firing only while it is re-sent, so each dispatch also re-posts
every open finding routed to an Alertmanager channel (not recorded as deliveries).

An acknowledged finding (:mod:`modelward.guards.acks`) is not announced and not re-posted
(so Alertmanager lets its alert lapse); when its ack expires or is revoked while it is still
open, the next run announces it again, once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace

from .._version import __version__
from ..ledger import acks as ledger_acks
from ..ledger import alerts as ledger_alerts
from ..ledger.engine import Store
from ..settings import Settings
from ..timefmt import now_us
from . import messages
from .config import AlertConfig, Channel, load

log = logging.getLogger("modelward.alerts")
QUICK_RETRIES = (0.5, 1.0)  # seconds slept between the attempts of one dispatch
LONG_BACKOFF_MAX_S = 300


@dataclass
class Summary:
    queued: int = 0
    delivered: int = 0
    failed: int = 0  # gave up (max_attempts reached)
    retrying: int = 0  # left pending for a later dispatch
    refreshed: int = 0  # open findings re-posted to Alertmanager
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.delivered} delivered"]
        if self.retrying:
            parts.append(f"{self.retrying} to retry")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return "alerts: " + ", ".join(parts) + (f" ({'; '.join(self.errors[:3])})"
                                                 if self.errors else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirected POST would lose its body
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def signature(secret: str, timestamp: str, delivery_id: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{delivery_id}.".encode() + body,
                   hashlib.sha256)
    return "v1=" + mac.hexdigest()


def send(channel: Channel, payload: dict, delivery_id: str) -> None:
    """POST one message; raises OSError (urllib's errors) unless the answer is 2xx."""
    if channel.kind == "alertmanager":
        url, body = channel.url + "/api/v2/alerts", payload["alertmanager"]
    else:
        url, body = channel.url, payload
    data = json.dumps(body, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"modelward/{__version__}"}
    if channel.kind == "webhook":
        ts = str(int(time.time()))
        headers.update({"X-Modelward-Delivery": delivery_id, "X-Modelward-Timestamp": ts,
                        "X-Modelward-Signature": signature(channel.secret, ts, delivery_id,
                                                           data)})
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with _OPENER.open(req, timeout=channel.timeout) as resp:
        if not 200 <= resp.status < 300:
            raise urllib.error.HTTPError(url, resp.status, resp.reason, resp.headers, None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason or exc}"[:300]


def notify(store: Store, settings: Settings, run_id: str, *, sleep=time.sleep) -> Summary:
    """Queue the transitions of guard run ``run_id`` for every channel that routes them,
    then send what is due. Nothing to do without channels."""
    cfg = load(settings)
    summary = Summary()
    if not cfg.channels:
        return summary
    with store.read() as conn:
        moved = ledger_alerts.transitions(conn, run_id)
        now = now_us()
        acked = ledger_acks.active(conn, now)
        again = set(ledger_acks.lapsed(conn, now))
        if again:  # an ack expired or was revoked while the finding stayed open
            moved += [replace(t, run_id=run_id) for t in ledger_alerts.open_transitions(conn)
                      if t.key in again]
    moved = [t for t in moved if not (t.state == "opened" and t.key in acked)]
    rows = [{"channel": ch.name, "finding_key": t.key, "transition": t.state,
             "run_id": t.run_id, "code": t.code, "severity": t.severity,
             "payload": messages.build(ch, t, cfg.dashboard_url)}
            for t in moved for ch in cfg.channels if ch.routes(t.code, t.severity)]
    if rows:
        with store.write() as conn:
            summary.queued = ledger_alerts.enqueue(conn, rows, now=now_us())
    deliver_due(store, cfg, summary, sleep=sleep)
    _refresh_alertmanager(store, cfg, summary)
    return summary


def deliver_due(store: Store, cfg: AlertConfig, summary: Summary | None = None, *,
                sleep=time.sleep) -> Summary:
    """Send every pending delivery that is due (see the module docstring)."""
    summary = summary or Summary()
    with store.read() as conn:
        pending = ledger_alerts.due(conn, now_us())
    by_name = {c.name: c for c in cfg.channels}
    for d in pending:
        channel = by_name.get(d.channel)
        attempts, error = d.attempts, None
        if channel is None:
            error = f"channel {d.channel!r} is no longer configured"
        else:
            for pause in (0.0, *QUICK_RETRIES):
                if attempts >= channel.max_attempts:
                    break
                if pause:
                    sleep(pause)
                attempts += 1
                try:
                    send(channel, d.payload, d.id)
                    error = None
                    break
                except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
                    error = _describe(exc)
        now = now_us()
        with store.write() as conn:
            if error is None:
                ledger_alerts.mark(conn, d.id, status="delivered", attempts=attempts,
                                   next_attempt_at=now, delivered_at=now)
                summary.delivered += 1
                continue
            gave_up = channel is None or attempts >= channel.max_attempts
            backoff = min(2 ** attempts, LONG_BACKOFF_MAX_S) * 1_000_000
            ledger_alerts.mark(conn, d.id, status="failed" if gave_up else "pending",
                               attempts=attempts, next_attempt_at=now + backoff, error=error)
        summary.errors.append(f"{d.channel}: {error}")
        if gave_up:
            summary.failed += 1
        else:
            summary.retrying += 1
        log.warning("alert %s to %s not delivered (attempt %d): %s", d.id, d.channel,
                    attempts, error)
    return summary


def _refresh_alertmanager(store: Store, cfg: AlertConfig, summary: Summary) -> None:
    managers = [c for c in cfg.channels if c.kind == "alertmanager"]
    if not managers:
        return
    with store.read() as conn:
        acked = ledger_acks.active(conn, now_us())
        still_open = [t for t in ledger_alerts.open_transitions(conn) if t.key not in acked]
    for ch in managers:
        alerts = [messages.build(ch, t, cfg.dashboard_url)["alertmanager"][0]
                  for t in still_open if ch.routes(t.code, t.severity)]
        if not alerts:
            continue
        try:
            send(ch, {"alertmanager": alerts}, "refresh")
            summary.refreshed += len(alerts)
        except (OSError, ValueError) as exc:
            summary.errors.append(f"{ch.name}: refresh: {_describe(exc)}")
