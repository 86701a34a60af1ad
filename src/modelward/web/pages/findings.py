"""Findings by severity and guard (the report ``modelward check`` prints), each guard
linked to its documentation page, and each evidence value that names a decision, alias or
artifact linked to its page."""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import quote

from fastapi import Request
from markupsafe import Markup, escape

from ...display import inert
from ...guards import docs as guard_docs
from ...guards import registry, run
from ...timefmt import now_us
from . import charts
from ._base import UUID, page, store_of

CACHE_SECONDS = 60  # the guards take seconds on a large ledger; a page reload should not
_lock = threading.Lock()


def report_of(request: Request, fresh: bool = False):
    """The guards' report, recomputed at most once a minute (or on ``fresh``)."""
    state = request.app.state
    with _lock:
        cached = getattr(state, "dashboard_report", None)
        if fresh or cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
            store = store_of(request)
            cached = (time.monotonic(), run(store, store.settings, now=now_us()))
            state.dashboard_report = cached
    return cached[1]


def link_value(key: str, value) -> Markup:
    """An evidence value, linked when it names a decision, an alias or a digest."""
    if isinstance(value, str) and UUID.match(value) and "decision" in key:
        return Markup(f'<a class="decision-link" href="/decisions/{escape(value)}">'
                      f"{escape(value)}</a>")
    if isinstance(value, str) and key in ("alias",):
        # a valid alias name is its own URL; anything else is percent-encoded
        href = quote(value, safe="/@:+")
        return Markup(f'<a href="/aliases?alias={escape(href)}">{escape(inert(value))}</a>')
    if isinstance(value, list):
        return Markup(", ").join(link_value(key, v) for v in value)
    if isinstance(value, dict):
        return Markup("; ").join(Markup(f"{escape(k)}: ") + link_value(k, v)
                                 for k, v in value.items())
    return escape("—" if value is None else inert(value))


@page("/")
def findings_page(request: Request, fresh: bool = False):
    report = report_of(request, fresh)
    groups: dict[str, dict[str, list]] = {}
    for f in report.findings:
        groups.setdefault(f.severity, {}).setdefault(f.code, []).append(f)
    order = [s for s in reversed(registry.SEVERITIES) if s in groups]
    per_guard: dict[str, dict[str, int]] = {}
    for f in report.findings:
        per_guard.setdefault(f.code, {}).setdefault(f.severity, 0)
        per_guard[f.code][f.severity] += 1
    rows = [{"label": f"{code} {registry.BY_CODE[code].name}", "value": n, "key": code,
             "color": charts.SEVERITY[sev], "href": f"#{code}",
             "title": f"{code}: {n} {sev} finding(s)"}
            for code in sorted(per_guard) for sev, n in per_guard[code].items()]
    chart = charts.bars(rows, label="findings per guard, coloured by severity")
    return "findings.html", {"report": report, "groups": groups, "order": order,
                             "chart": chart, "codes": registry.BY_CODE, "link": link_value,
                             "uuid": UUID.match,
                             "counts": report.counts()}


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
