"""The findings page: the latest recorded guard run, ranked by guard (severity, decisions
affected, findings), filtered and searched from the URL, new-since-the-previous-run marked,
every id a finding names linked; the guards run again in the background
(:mod:`modelward.web.checkruns`) while the page shows what it has."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import JSONResponse
from markupsafe import Markup, escape

from ...display import inert, short_digest
from ...guards import docs as guard_docs
from ...guards import refs, registry
from ...guards.history import Filters, listing
from ...timefmt import parse_when
from .. import checkruns
from ._base import page, store_of

SHOW_OPEN = 12  # with at most this many findings shown, every guard's list starts open


def href(kind: str, value: str) -> str | None:
    """Where the dashboard shows the thing an id names (None: no page for it)."""
    return refs.dashboard_path(kind, value)


def link(kind: str, value: str, text: str | None = None) -> Markup:
    shown = text or (short_digest(value) if kind == "digest" else value)
    target = href(kind, value)
    if target is None:
        return Markup(f'<code title="{escape(value)}">{escape(inert(shown))}</code>')
    return Markup(f'<a class="ref {kind}-link" data-kind="{kind}" href="{escape(target)}">'
                  f"{escape(inert(shown))}</a>")


def linked_message(message: str, refs) -> Markup:
    """The message with every id the finding names (its structured refs) made a link; the
    ids come from the evidence, so nothing is guessed from the text."""
    linkable = {v: k for k, v in refs if href(k, v) is not None and len(v) >= 3}
    if not linkable:
        return escape(inert(message))
    pattern = re.compile(r"(?<![\w/@.-])(" + "|".join(
        re.escape(v) for v in sorted(linkable, key=len, reverse=True)) + r")(?![\w/@-])")
    out, pos = [], 0
    for m in pattern.finditer(message):
        out.append(escape(inert(message[pos:m.start()])))
        out.append(link(linkable[m.group(1)], m.group(1)))
        pos = m.end()
    out.append(escape(inert(message[pos:])))
    return Markup("").join(out)


def evidence_value(key: str, value, refs: dict[str, str]) -> Markup:
    """An evidence value, linked when it is an id the finding names (``refs``: id ->
    kind, from :func:`modelward.guards.refs.facts_of`)."""
    if isinstance(value, str) and value in refs:
        return link(refs[value], value, value)
    if isinstance(value, int) and not isinstance(value, bool) and str(value) in refs:
        return link(refs[str(value)], str(value))
    if isinstance(value, list):
        return Markup(", ").join(evidence_value(key, v, refs) for v in value)
    if isinstance(value, dict):
        return Markup("; ").join(Markup(f"{escape(k)}: ") + evidence_value(k, v, refs)
                                 for k, v in value.items())
    return escape("—" if value is None else inert(value))


def filters_of(severity, guard, alias, since, q, new, state=None) -> Filters:
    start = parse_when(since.strip(), field="since") if since and since.strip() else None
    return Filters.parse(severity=severity, guard=guard, alias=alias, since=start, q=q,
                         new=new, state=state)


@page("/")
def findings_page(request: Request, severity: str | None = None, guard: str | None = None,
                  alias: str | None = None, since: str | None = None, q: str | None = None,
                  new: bool = False, fresh: bool = False, state: str | None = None):
    store_of(request)  # the NUL check of every query parameter, first
    filters = filters_of(severity, guard, alias, since, q, new, state)
    checkruns.ensure_fresh(request.app, force=fresh)
    shown = listing(request.app.state.store, filters)
    state = checkruns.state(request.app)
    form = {"severity": filters.severity or "", "guard": filters.guard or "",
            "alias": filters.alias or "", "since": (since or "").strip(),
            "q": filters.q or "", "new": filters.new, "state": filters.state or ""}
    return "findings.html", {
        "shown": shown, "state": state, "form": form, "codes": registry.BY_CODE,
        "severities": list(reversed(registry.SEVERITIES)), "link": link,
        "message": linked_message, "value": evidence_value,
        "open_all": shown.shown <= SHOW_OPEN or filters.active(),
        "kinds": (("decision", "Decisions"), ("eval_run", "Eval runs"),
                  ("promotion", "Promotions"), ("alias", "Aliases"),
                  ("experiment", "Experiments"), ("fingerprint_run", "Fingerprint runs"),
                  ("digest", "Digests"))}


@page("/findings/events")
def findings_events(request: Request):
    """The event stream of ``GET /api/v1/findings/events`` for the page's live view (the
    dashboard's cookie is not accepted under /api/)."""
    from ..api.finding_events import event_response

    return event_response(request, request.headers.get("last-event-id"))


@page("/findings/state")
def findings_state(request: Request):
    """The progress the findings page polls while the guards run (JSON)."""
    return JSONResponse(checkruns.state(request.app), headers={"Cache-Control": "no-store"})


def _docs_html(text: str) -> Markup:
    """A guard's docstring section as HTML: paragraphs, ``::`` literal blocks, code."""
    md = guard_docs.to_markdown(text)
    out, in_code, buf = [], False, []
    for line in md.splitlines() + [""]:
        if line.strip() == "```":
            if in_code:
                out.append(f"<pre>{escape(chr(10).join(buf))}</pre>")
                buf = []
            else:
                out.append(_para(buf))
                buf = []
            in_code = not in_code
        elif in_code or line.strip():
            buf.append(line)
        else:
            out.append(_para(buf))
            buf = []
    return Markup("".join(out))


def _para(lines: list[str]) -> str:
    if not lines:
        return ""
    text = str(escape(" ".join(x.strip() for x in lines)))
    return "<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", text) + "</p>"


@page("/guards/{code}")
def guard_page(request: Request, code: str):
    row = registry.get(code.upper())
    parts = None
    if row.status == "active":
        summary, sections = guard_docs.sections(registry.load(row.code).__doc__, row.code)
        parts = [("Summary", _docs_html(summary))] + [
            (h, _docs_html(sections[h])) for h in guard_docs.HEADINGS]
    return "guard.html", {"row": row, "parts": parts}
