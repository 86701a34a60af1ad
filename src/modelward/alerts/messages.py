"""Each channel's message for one finding's transition (opened or resolved).

Every message carries the finding (guard code and name, severity, subject, what it says),
its fix, and links: the findings page filtered to the guard, and the dashboard page of
every id the finding names (decisions link to their audit). Text from the ledger is sent
as data: JSON-escaped for webhooks and Alertmanager, and with Slack's three control
characters (``& < >``) escaped for Slack, so a hostile alias cannot forge a link.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ..guards import refs, registry
from ..ledger.alerts import Transition
from ..timefmt import iso
from .config import Channel

SCHEMA = "modelward.alert/1"
MAX_LINKS = 10


def links(t: Transition, dashboard_url: str | None) -> list[dict]:
    """[{kind, id, url}] for the findings page and each id the finding names (no URL without
    a dashboard_url)."""
    base = dashboard_url
    out = [{"kind": "findings", "id": t.code,
            "url": base and f"{base}/findings?" + urlencode({"guard": t.code})}]
    for kind, value in refs.facts_of(t.code, t.evidence).refs:
        path = refs.dashboard_path(kind, value)
        if path is None:
            continue
        out.append({"kind": kind, "id": value, "url": base and base + path})
        if len(out) > MAX_LINKS:
            break
    return out


def finding_dict(t: Transition) -> dict:
    code = registry.BY_CODE.get(t.code)
    return {"key": t.key, "code": t.code, "name": code.name if code else None,
            "severity": t.severity, "subject": t.subject, "message": t.message,
            "fix": t.fix, "opened_at": iso(t.opened_at), "resolved_at": iso(t.resolved_at)}


def build(channel: Channel, t: Transition, dashboard_url: str | None) -> dict:
    """The body to send (as JSON) to ``channel`` for ``t``."""
    found, linked = finding_dict(t), links(t, dashboard_url)
    if channel.kind == "webhook":
        return {"schema": SCHEMA, "state": t.state, "run": t.run_id, "finding": found,
                "links": linked}
    if channel.kind == "slack":
        return _slack(t, found, linked)
    return {"alertmanager": [_alertmanager(t, found, linked)]}


def _slack_escape(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(t: Transition, found: dict, linked: list[dict]) -> dict:
    verb = "opened" if t.state == "opened" else "resolved"
    head = (f"{'✅' if verb == 'resolved' else ('🔴' if t.severity == 'error' else '🟠')} "
            f"*{t.code}* {_slack_escape(found['name'] or '')} ({t.severity}) {verb}: "
            f"{_slack_escape(t.subject)}")
    lines = [head]
    if t.message:
        lines.append(_slack_escape(t.message))
    if t.fix and t.state == "opened":
        lines.append("Fix: " + _slack_escape(t.fix))
    shown = [f"<{_slack_escape(x['url'])}|{_slack_escape(x['kind'])} "
             f"{_slack_escape(x['id'])[:40]}>" for x in linked if x["url"]]
    if shown:
        lines.append(" · ".join(shown))
    return {"text": "\n".join(lines)}


def _alertmanager(t: Transition, found: dict, linked: list[dict]) -> dict:
    alert = {
        "labels": {"alertname": t.code, "code": t.code, "severity": t.severity,
                   "finding": t.key, "subject": t.subject[:200], "source": "modelward"},
        "annotations": {"summary": (t.message or t.subject)[:2000],
                        "fix": (t.fix or "")[:2000], "name": found["name"] or ""},
        "startsAt": found["opened_at"],
    }
    if t.state == "resolved" and found["resolved_at"]:
        alert["endsAt"] = found["resolved_at"]
    first = next((x["url"] for x in linked if x["url"]), None)
    if first:
        alert["generatorURL"] = first
    return alert
