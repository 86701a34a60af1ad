"""The alias timeline: which digest each alias pointed at when (an SVG drawn from
``ledger.aliases.all_events`` / ``history``), one colour per digest with no two alike and
none red, rollbacks and deletions marked, each rollback's incident (the bad digest's time in
service) as a band at least a few pixels wide with a link that zooms to it; a time range
(``since``/``until``, or dragging across the chart) and a moment (``at``) whose resolution
(``ledger.aliases.targets_at``) the page states."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request

from ...display import duration
from ...guards.history import Filters, listing
from ...ledger import aliases as ledger_aliases
from ...timefmt import iso, now_us, parse_when
from . import charts
from ._base import labels, page, store_of, when

ROLLBACK, DELETE = "rollback", ledger_aliases.DELETE


def _span_title(alias: str, e, label: str, end: int | None) -> str:
    why = f" — {e.reason}" if e.reason else ""
    who = f" by {e.actor}" if e.actor else ""
    return (f"{alias} → {label} ({e.kind}{who}) from {when(e.at)} until "
            f"{when(end) if end else 'now'}{why}")


def incidents(events: list, names: dict[str, str]) -> list[dict]:
    """Each rollback as an incident: the rolled-back digest's time in service, from the
    event that set it to the rollback. ``events`` in time order (any aliases)."""
    last: dict[str, object] = {}
    out = []
    for e in events:
        prev = last.get(e.alias)
        if e.kind == ROLLBACK and prev is not None:
            out.append({"alias": e.alias, "start": prev.at, "end": e.at, "digest": prev.digest,
                        "back_to": e.digest, "reason": e.reason,
                        "length": duration(e.at - prev.at),
                        "title": f"incident on {e.alias}: {names[prev.digest]} served for "
                                 f"{duration(e.at - prev.at)} ({when(prev.at)} – "
                                 f"{when(e.at)}) until rolled back to {names[e.digest]}"})
        last[e.alias] = e
    return out


def _lane(alias: str, evs: list, names, colors, t1: int, lane_of) -> dict[str, dict]:
    """Spans, points and incident bands of one alias's events, placed by ``lane_of(e)``."""
    rows: dict[str, dict] = {}
    for i, e in enumerate(evs):
        row = rows.setdefault(lane_of(e), {"spans": [], "points": [], "bands": []})
        end = evs[i + 1].at if i + 1 < len(evs) else None
        if e.kind == DELETE:  # the alias points at nothing from here: a cross, no span
            row["points"].append({"at": e.at, "cls": "delete",
                                  "title": f"{alias} DELETED at {when(e.at)} (it pointed at "
                                           f"{names[e.digest]})"
                                           + (f": {e.reason}" if e.reason else "")})
            continue
        row["spans"].append({"start": e.at, "end": end or t1, "color": colors[e.digest],
                             "key": e.digest, "cls": "span " + e.kind,
                             "title": _span_title(alias, e, names[e.digest], end)})
        if e.kind == ROLLBACK:
            row["points"].append({"at": e.at, "cls": "rollback",
                                  "title": f"ROLLBACK of {alias} to {names[e.digest]} at "
                                           f"{when(e.at)}" + (f": {e.reason}" if e.reason
                                                              else "")})
    for inc in incidents(evs, names):
        rows[lane_of(next(e for e in evs if e.at == inc["start"]
                          and e.digest == inc["digest"]))]["bands"].append(inc)
    return rows


def alias_lanes(events: list, names: dict[str, str], t1: int,
                colors: dict[str, str] | None = None) -> list[dict]:
    """One lane per alias: a span per event until the next, rollbacks as red markers,
    deletions as crosses, incidents as red bands."""
    colors = colors or charts.distinct_colors(e.digest for e in events)
    by_alias: dict[str, list] = {}
    for e in events:
        by_alias.setdefault(e.alias, []).append(e)
    out = []
    for alias in sorted(by_alias):
        row = _lane(alias, by_alias[alias], names, colors, t1, lambda e: e.alias)[alias]
        out.append({"label": alias, "href": f"/aliases?alias={alias}", **row})
    return out


def digest_lanes(alias: str, evs: list, names: dict[str, str], t1: int,
                 colors: dict[str, str] | None = None) -> list[dict]:
    """One lane per digest the alias held: a return to an earlier lane is a rollback."""
    colors = colors or charts.distinct_colors(e.digest for e in evs)
    rows = _lane(alias, evs, names, colors, t1, lambda e: e.digest)
    return [{"label": names[d], **row} for d, row in rows.items()]


def findings_by_alias(store, alias: str | None) -> dict[str, list[dict]]:
    """The latest recorded guard run's findings that name each alias (``alias``: that one
    only), as marks at the time each was first seen — the other incidents of a timeline."""
    found = listing(store, Filters(alias=alias) if alias else None)
    out: dict[str, list[dict]] = {}
    for group in found.groups:
        for item in group.items:
            r = item.row
            at = r.first_seen if r.first_seen is not None else item.opened_at
            if at is None:
                continue
            named = {v for k, v in item.refs if k == "alias"}
            for name in sorted(named if alias is None else named & {alias} or {alias}):
                out.setdefault(name, []).append({
                    "at": at, "cls": f"finding {r.severity}", "code": r.code,
                    "severity": r.severity, "message": r.message,
                    "href": "/?" + urlencode({"alias": name, "guard": r.code}),
                    "title": f"{r.code} ({r.severity}) since {when(at)}: {r.message[:300]}"})
    return out


def _mark_findings(rows: list[dict], marks: dict[str, list[dict]], alias: str | None,
                   events: list, names: dict[str, str]) -> None:
    """Put each finding mark on its alias's lane (one alias: on the lane of the digest the
    alias pointed at when the finding was first seen, else the first lane)."""
    if alias is None:
        for row in rows:
            row["points"] += marks.get(row["label"], [])
        return
    by_label = {row["label"]: row for row in rows}
    for m in marks.get(alias, []):
        before = [e for e in events if e.at <= m["at"] and e.kind != DELETE]
        lane = by_label.get(names[before[-1].digest]) if before else None
        if lane is None and rows:
            lane = rows[0]
        if lane is not None:
            lane["points"].append(m)


def _in_window(rows: list[dict], t0: int, t1: int) -> list[dict]:
    """Only the marks that touch [t0, t1] (a span wholly outside would draw at the edge)."""
    for row in rows:
        row["spans"] = [s for s in row["spans"] if s["end"] >= t0 and s["start"] <= t1]
        row["points"] = [p for p in row["points"] if t0 <= p["at"] <= t1]
        row["bands"] = [b for b in row["bands"] if b["end"] >= t0 and b["start"] <= t1]
    return rows


def _zoom(base: dict, start: int, end: int) -> str:
    pad = max((end - start) // 2, 3_600_000_000)
    return "/aliases?" + urlencode({**base, "since": iso(start - pad), "until": iso(end + pad)})


@page("/aliases")
def aliases_page(request: Request, alias: str | None = None, at: str | None = None,
                 since: str | None = None, until: str | None = None):
    alias = alias.strip() or None if alias else None
    mark = parse_when(at.strip(), field="at") if at and at.strip() else None
    w0 = parse_when(since.strip(), field="since") if since and since.strip() else None
    w1 = parse_when(until.strip(), field="until") if until and until.strip() else None
    with store_of(request).read() as conn:
        if alias:
            events = ledger_aliases.history(conn, ledger_aliases.check_alias(alias))
        else:
            events = ledger_aliases.all_events(conn)
        events.sort(key=lambda e: (e.at, e.id))
        resolved = ledger_aliases.targets_at(conn, mark) if mark is not None else None
        names = labels(conn, {e.digest for e in events} | {e.previous_digest for e in events}
                       | set((resolved or {}).values()))
    colors = charts.distinct_colors(e.digest for e in events)
    t1 = max([now_us()] + [e.at for e in events])
    t0 = min([e.at for e in events] + ([mark] if mark else []), default=t1 - 1)
    t0 -= max((t1 - t0) // 50, 1)  # a little room before the first event
    if w0 is not None or w1 is not None:
        t0, t1 = (w0 if w0 is not None else t0), (w1 if w1 is not None else t1)
        if t1 <= t0:
            from ...errors import ValidationError
            raise ValidationError(f"until ({when(t1)}) must be after since ({when(t0)})",
                                  field="until")
    if alias:
        rows = digest_lanes(alias, events, names, t1, colors)
        label = f"timeline of {alias}: one lane per digest it pointed at"
    else:
        rows = alias_lanes(events, names, t1, colors)
        label = "timeline of every alias: colour = digest"
    finding_marks = findings_by_alias(store_of(request), alias) if events else {}
    _mark_findings(rows, finding_marks, alias, events, names)
    marks = ()
    if mark is not None:
        target = (resolved or {}).get(alias) if alias else None
        marks = ({"at": mark, "title": f"at {when(mark)}" + (
            f": {alias} → {names[target]} ({target})" if target else "")},)
    chart = charts.lanes(_in_window(rows, t0, t1), t0, t1, label=label, marks=marks,
                         brush=True) if events else None
    base = {k: v for k, v in (("alias", alias), ("at", at)) if v}
    found = incidents(events, names)
    for inc in found:
        inc["zoom"] = _zoom(base, inc["start"], inc["end"])
    shown = [e for e in events if t0 <= e.at <= t1]
    return "aliases.html", {
        "alias": alias, "events": sorted(shown, key=lambda e: (e.at, e.id), reverse=True),
        "hidden": len(events) - len(shown), "names": names, "chart": chart,
        "rollbacks": sum(e.kind == ROLLBACK for e in events), "colors": colors,
        "legend": [(d, names[d], c) for d, c in colors.items()], "incidents": found,
        "findings": sorted((dict(m, alias=a) for a, ms in finding_marks.items() for m in ms),
                           key=lambda m: (-m["at"], m["code"])),
        "at": at or "", "mark": mark, "resolved": resolved, "since": since or "",
        "until": until or "", "zoomed": w0 is not None or w1 is not None,
        "window": (t0, t1), "all_href": "/aliases?" + urlencode(base) if base else "/aliases",
        "presets": [(name, "/aliases?" + urlencode({**base, "since": back}))
                    for name, back in (("last 24 h", "24h"), ("last 7 days", "7d"),
                                       ("last 30 days", "30d"))]}
