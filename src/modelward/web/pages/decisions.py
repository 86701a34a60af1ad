"""Decisions: the newest first, a page at a time, filtered by subject, alias, process,
digest and time, each with whether it agrees with its alias (``registry.decision_list``,
as ``GET /api/v1/decisions``), exported as CSV or JSON lines; and the audit page of one
decision (``registry.audit.audit_decision``, the function behind ``modelward audit``)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

from ...errors import ValidationError
from ...ledger import aliases as ledger_aliases
from ...registry.audit import audit_decision
from ...registry.decision_list import filter_of, list_decisions
from ...timefmt import iso
from ..api.decisions import export_response
from . import charts
from ._base import UUID, labels, page, store_of
from .aliases import digest_lanes

PAGE = 50
FIELDS = ("subject", "alias", "process", "digest", "since", "until")


def _time(value: str | None) -> str | None:
    """A form time as ``parse_when`` reads it: the browser's ``datetime-local`` value
    (``2026-03-01T12:00``, read as UTC) gains its seconds and offset."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if len(text) == 16 and text[10] == "T":
        text += ":00Z"
    return text


def _filter(form: dict[str, str]):
    return filter_of(**{k: _time(form[k]) if k in ("since", "until") else form[k]
                        for k in FIELDS})


@page("/decisions")
def search_page(request: Request, id: str | None = None, subject: str | None = None,
                alias: str | None = None, process: str | None = None,
                digest: str | None = None, since: str | None = None,
                until: str | None = None, cursor: str | None = None):
    form = {"id": id or "", "subject": subject or "", "alias": alias or "",
            "process": process or "", "digest": digest or "", "since": since or "",
            "until": until or ""}
    if id and id.strip():
        wanted = id.strip().lower()
        if not UUID.match(wanted):
            raise ValidationError(f"not a decision id: {id[:80]!r}", field="id",
                                  hint="decision ids are UUIDs")
        return RedirectResponse(f"/decisions/{wanted}", 303)
    store = store_of(request)
    found = list_decisions(store, _filter(form), cursor=cursor, limit=PAGE)
    with store.read() as conn:
        names = labels(conn, {i.decision.model_digest for i in found.items}
                       | {i.decision.prompt_digest for i in found.items}
                       | {i.alias_digest for i in found.items})
    query = {k: v.strip() for k, v in form.items() if k != "id" and v.strip()}
    return "decisions.html", {
        "form": form, "found": found.items, "iso": iso, "names": names, "page_size": PAGE,
        "filtered": bool(query), "first_page": cursor is None,
        "next": "/decisions?" + urlencode({**query, "cursor": found.next_cursor})
        if found.next_cursor else None,
        "first": "/decisions" + ("?" + urlencode(query) if query else ""),
        "export": "/decisions/export?" + urlencode(query) + ("&" if query else "")}


@page("/decisions/export")
def export_page(request: Request, format: str = "csv", subject: str | None = None,
                alias: str | None = None, process: str | None = None,
                digest: str | None = None, since: str | None = None,
                until: str | None = None):
    """The current filter of the decisions page, streamed as CSV or JSON lines."""
    form = {k: v or "" for k, v in (("subject", subject), ("alias", alias),
                                    ("process", process), ("digest", digest),
                                    ("since", since), ("until", until))}
    return export_response(store_of(request), _filter(form), format)


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
