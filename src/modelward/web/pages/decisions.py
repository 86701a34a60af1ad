"""Decision audit: search by id, subject, alias and time, and the audit page of one
decision (``registry.audit.audit_decision``, the function behind ``modelward audit``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from ...errors import ValidationError
from ...ledger import aliases as ledger_aliases
from ...ledger import decisions as ledger_decisions
from ...registry.audit import audit_decision
from ...timefmt import parse_when
from . import charts
from ._base import UUID, labels, page, store_of
from .aliases import digest_lanes

LIMIT = 200


def _time(value: str | None, field: str) -> int | None:
    """A form time: ISO 8601, or the browser's ``datetime-local`` value (read as UTC)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if len(text) == 16 and text[10] == "T":  # 2026-03-01T12:00 from <input datetime-local>
        text += ":00Z"
    return parse_when(text, field=field)


@page("/decisions")
def search_page(request: Request, id: str | None = None, subject: str | None = None,
                alias: str | None = None, since: str | None = None,
                until: str | None = None):
    form = {"id": id or "", "subject": subject or "", "alias": alias or "",
            "since": since or "", "until": until or ""}
    if id and id.strip():
        wanted = id.strip().lower()
        if not UUID.match(wanted):
            raise ValidationError(f"not a decision id: {id[:80]!r}", field="id",
                                  hint="decision ids are UUIDs")
        return RedirectResponse(f"/decisions/{wanted}", 303)
    found, searched = [], any(v.strip() for v in form.values())
    if searched:
        start, end = _time(since, "since"), _time(until, "until")
        with store_of(request).read() as conn:
            found = ledger_decisions.search(conn, subject=subject.strip() or None
                                            if subject else None,
                                            alias=alias.strip() or None if alias else None,
                                            since=start, until=end, limit=LIMIT)
            names = labels(conn, {d.model_digest for d in found}
                           | {d.prompt_digest for d in found})
    else:
        names = {}
    return "decisions.html", {"form": form, "found": found, "searched": searched,
                              "names": names, "limit": LIMIT}


@page("/decisions/{decision_id}")
def audit_page(request: Request, decision_id: str):
    store = store_of(request)
    report = audit_decision(store, decision_id)
    data = report.to_dict()
    d = report.decision
    chart = None
    if report.alias is not None and report.alias.state == "resolved":
        with store.read() as conn:
            evs = ledger_aliases.history(conn, d.alias)
            names = labels(conn, {e.digest for e in evs})
        t0, t1 = evs[0].at, max(evs[-1].at, d.at)
        pad = max((t1 - t0) // 20, 60_000_000)
        rows = digest_lanes(d.alias, evs, names, t1 + pad)
        chart = charts.lanes(rows, t0 - pad, t1 + pad, marks=(
            {"at": d.at, "title": f"this decision ({d.id})"},),
            label=f"{d.alias} around this decision")
    return "audit.html", {"a": data, "d": d, "chart": chart}
