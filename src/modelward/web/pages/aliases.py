"""The alias timeline: which digest each alias pointed at when, rollbacks marked (an SVG
drawn from ``ledger.aliases.all_events`` / ``history``)."""

from __future__ import annotations

from fastapi import Request

from ...ledger import aliases as ledger_aliases
from ...timefmt import now_us, parse_when
from . import charts
from ._base import labels, page, store_of, when

ROLLBACK = "rollback"


def _span_title(alias: str, e, label: str, end: int | None) -> str:
    why = f" — {e.reason}" if e.reason else ""
    who = f" by {e.actor}" if e.actor else ""
    return (f"{alias} → {label} ({e.kind}{who}) from {when(e.at)} until "
            f"{when(end) if end else 'now'}{why}")


def alias_lanes(events: list, names: dict[str, str], t1: int) -> list[dict]:
    """One lane per alias: a span per event until the next, rollbacks as red markers."""
    by_alias: dict[str, list] = {}
    for e in events:
        by_alias.setdefault(e.alias, []).append(e)
    rows = []
    for alias in sorted(by_alias):
        evs = by_alias[alias]
        spans, points = [], []
        for i, e in enumerate(evs):
            end = evs[i + 1].at if i + 1 < len(evs) else None
            spans.append({"start": e.at, "end": end or t1, "color": charts.color_of(e.digest),
                          "key": e.digest, "cls": "span " + e.kind,
                          "title": _span_title(alias, e, names[e.digest], end)})
            if e.kind == ROLLBACK:
                points.append({"at": e.at, "cls": "rollback",
                               "title": f"ROLLBACK of {alias} to {names[e.digest]} at "
                                        f"{when(e.at)}" + (f": {e.reason}" if e.reason else "")})
        rows.append({"label": alias, "href": f"/aliases?alias={alias}", "spans": spans,
                     "points": points})
    return rows


def digest_lanes(alias: str, evs: list, names: dict[str, str], t1: int) -> list[dict]:
    """One lane per digest the alias held: a return to an earlier lane is a rollback."""
    order: list[str] = []
    for e in evs:
        if e.digest not in order:
            order.append(e.digest)
    rows = {d: {"label": names[d], "spans": [], "points": []} for d in order}
    for i, e in enumerate(evs):
        end = evs[i + 1].at if i + 1 < len(evs) else None
        row = rows[e.digest]
        row["spans"].append({"start": e.at, "end": end or t1, "key": e.digest,
                             "color": charts.color_of(e.digest), "cls": "span " + e.kind,
                             "title": _span_title(alias, e, names[e.digest], end)})
        if e.kind == ROLLBACK:
            row["points"].append({"at": e.at, "cls": "rollback",
                                  "title": f"ROLLBACK to {names[e.digest]} at {when(e.at)}"})
    return [rows[d] for d in order]


@page("/aliases")
def aliases_page(request: Request, alias: str | None = None, at: str | None = None):
    mark = parse_when(at, field="at") if at else None
    with store_of(request).read() as conn:
        if alias:
            events = ledger_aliases.history(conn, ledger_aliases.check_alias(alias))
        else:
            events = ledger_aliases.all_events(conn)
        names = labels(conn, {e.digest for e in events} | {e.previous_digest for e in events})
    t1 = max([now_us()] + [e.at for e in events])
    t0 = min([e.at for e in events] + ([mark] if mark else []), default=t1 - 1)
    t0 -= max((t1 - t0) // 50, 1)  # a little room before the first event
    marks = ({"at": mark, "title": f"decision at {when(mark)}"},) if mark else ()
    if alias:
        rows = digest_lanes(alias, events, names, t1)
        label = f"timeline of {alias}: one lane per digest it pointed at"
    else:
        rows = alias_lanes(events, names, t1)
        label = "timeline of every alias: colour = digest"
    chart = charts.lanes(rows, t0, t1, label=label, marks=marks) if events else None
    return "aliases.html", {"alias": alias, "events": list(reversed(events)), "names": names,
                            "chart": chart, "rollbacks": sum(e.kind == ROLLBACK
                                                             for e in events),
                            "colors": charts.color_of}
