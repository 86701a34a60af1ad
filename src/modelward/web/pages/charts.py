"""Charts drawn server-side as inline SVG (no JavaScript, no build step): horizontal bars,
lanes on a time axis, and lines over time. Every mark carries a ``<title>`` (the browser's
tooltip) and the data attributes the browser tests read."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from markupsafe import Markup
from markupsafe import escape as _html_escape

from ...display import inert

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
           "#ff9da7", "#bab0ac", "#e15759")
SEVERITY = {"error": "#d62728", "warning": "#e8910c", "info": "#3b7dd8"}
GOOD, BAD, NEUTRAL = "#2e9e5b", "#d62728", "#9aa0a6"


def escape(value) -> Markup:
    """HTML-escaped and inert: labels and titles quote ledger names."""
    if isinstance(value, Markup):
        return value
    return _html_escape(inert(value, lines=True))


def color_of(key: str | None) -> str:
    """A stable colour per key (a digest keeps its colour on every page)."""
    if not key:
        return NEUTRAL
    return PALETTE[int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % len(PALETTE)]


def _attrs(**kw) -> str:
    return "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"'
                   for k, v in kw.items() if v is not None)


def _svg(width: int, height: int, body: list[str], label: str, cls: str) -> Markup:
    return Markup(f'<svg class="chart {cls}" role="img" aria-label="{escape(label)}" '
                  f'viewBox="0 0 {width} {height}" width="100%" '
                  f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
                  + "".join(body) + "</svg>")


def _text(x, y, s, anchor="start", cls="lbl", **kw) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}"{_attrs(**kw)}>' \
           f"{escape(s)}</text>"


def time_ticks(t0: int, t1: int, n: int = 6) -> list[tuple[int, str]]:
    """About ``n`` evenly spaced ticks over [t0, t1] (microseconds), labelled by date, or
    by date and time when the span is under three days."""
    if t1 <= t0:
        t1 = t0 + 1
    span = t1 - t0
    fmt = ("%Y-%m-%d" if span > 10 * 86_400_000_000 else "%m-%d %H:%M"
           if span > 2 * 3_600_000_000 else "%H:%M:%S")
    return [(t, datetime.fromtimestamp(t / 1e6, UTC).strftime(fmt))
            for t in (t0 + (t1 - t0) * i // (n - 1) for i in range(n))]


def bars(rows: list[dict], *, label: str, width: int = 760, unit: str = "",
         refs: tuple[tuple[float, str], ...] = (), bar_h: int = 22, left: int = 250,
         fmt=lambda v: f"{v:,.0f}") -> Markup:
    """Horizontal bars; ``rows``: {label, value, color?, title?, href?, key?}. Negative
    values draw left of a zero axis (SMD); ``refs`` are dashed reference lines."""
    if not rows:
        return Markup('<p class="empty">nothing to draw</p>')
    values = [r["value"] for r in rows] + [v for v, _ in refs]
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1
    plot = width - left - 70
    x = lambda v: left + (v - lo) / (hi - lo) * plot  # noqa: E731
    top, out = 18, []
    height = top + bar_h * len(rows) + 24
    for v, name in refs:
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top - 6}" y2="{height - 18}" '
                   f'class="ref"/>' + _text(x(v), top - 8, name, "middle", "ref-lbl"))
    out.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 4}" y2="{height - 18}" '
               'class="axis"/>')
    for i, r in enumerate(rows):
        y, v = top + i * bar_h, r["value"]
        x0, x1 = sorted((x(0), x(v)))
        title = r.get("title") or f"{r['label']}: {fmt(v)}{unit}"
        rect = (f'<rect class="bar" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{bar_h - 6}" fill="{r.get("color") or PALETTE[0]}"'
                f'{_attrs(data_key=r.get("key", r["label"]), data_value=v)}>'
                f"<title>{escape(title)}</title></rect>")
        text = r["label"] if len(r["label"]) <= left // 6.5 else \
            r["label"][:int(left // 6.5) - 1] + "…"  # never a silently cut version label
        name = _text(left - 8, y + bar_h / 2 + 4, text, "end")
        if r.get("href"):
            name = f'<a href="{escape(r["href"])}">{name}</a>'
        # a negative bar's value goes right of the zero axis, clear of the row's name
        out += [name, rect, _text(x1 + 4 if v >= 0 else x(0) + 4, y + bar_h / 2 + 4,
                                  fmt(v) + unit, "start", "val")]
    return _svg(width, height, out, label, "bars")


INCIDENT_MIN_PX = 8  # an incident band is never thinner: six hours on eight months shows


def lanes(rows: list[dict], t0: int, t1: int, *, label: str, width: int = 960,
          left: int = 210, lane_h: int = 30, marks: tuple[dict, ...] = (),
          brush: bool = False) -> Markup:
    """Lanes on a time axis. ``rows``: {label, href?, spans: [{start, end, color, title,
    key?, cls?}], points: [{at, title, cls}], bands?: [{start, end, title}]}; ``marks``:
    vertical lines {at, title}. A band (an incident) is drawn behind the lane at least
    :data:`INCIDENT_MIN_PX` wide; a point of class ``delete`` is a cross. ``brush`` adds
    the axis geometry as data attributes for static/timeline.js (drag to zoom)."""
    plot = width - left - 50  # room for the last tick's label
    span = max(t1 - t0, 1)
    x = lambda t: left + (min(max(t, t0), t1) - t0) / span * plot  # noqa: E731
    top = 10
    height = top + lane_h * len(rows) + 30
    out = []
    for i, row in enumerate(rows):
        for b in row.get("bands", ()):
            x0, x1 = x(b["start"]), x(b["end"])
            mid, w = (x0 + x1) / 2, max(x1 - x0, INCIDENT_MIN_PX)
            out.append(f'<rect class="incident" x="{mid - w / 2:.1f}" y="{top + i * lane_h}" '
                       f'width="{w:.1f}" height="{lane_h}"{_attrs(data_start=b["start"])}>'
                       f'<title>{escape(b["title"])}</title></rect>')
    for t, text in time_ticks(t0, t1):
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{height - 22}" '
                   'class="grid"/>' + _text(x(t), height - 8, text, "middle", "tick"))
    for i, row in enumerate(rows):
        y = top + i * lane_h
        name = _text(left - 8, y + lane_h / 2 + 4, row["label"][:30], "end")
        out.append(f'<a href="{escape(row["href"])}">{name}</a>' if row.get("href") else name)
        for s in row.get("spans", ()):
            x0, x1 = x(s["start"]), x(s["end"])
            out.append(f'<rect class="{s.get("cls", "span")}" x="{x0:.1f}" y="{y + 5}" '
                       f'width="{max(x1 - x0, 1.5):.1f}" height="{lane_h - 10}" '
                       f'fill="{s["color"]}"{_attrs(data_key=s.get("key"))}>'
                       f'<title>{escape(s["title"])}</title></rect>')
        for p in row.get("points", ()):
            px = x(p["at"])
            if p.get("cls") == "delete":
                out.append(f'<path class="delete" d="M{px - 5:.1f},{y + 5} l10,{lane_h - 10} '
                           f'm0,-{lane_h - 10} l-10,{lane_h - 10}"><title>'
                           f'{escape(p["title"])}</title></path>')
                continue
            out.append(f'<path class="{p.get("cls", "point")}" d="M{px - 6:.1f},{y} '
                       f'l12,0 l-6,10 z"><title>{escape(p["title"])}</title></path>')
    for m in marks:
        out.append(f'<line class="mark" x1="{x(m["at"]):.1f}" x2="{x(m["at"]):.1f}" '
                   f'y1="{top - 4}" y2="{height - 22}"><title>{escape(m["title"])}</title>'
                   "</line>")
    svg = _svg(width, height, out, label, "lanes")
    if brush:  # the axis, for the drag-to-zoom script: x = left + (t - t0) / span * plot
        svg = Markup(str(svg).replace(
            "<svg ", f'<svg data-t0="{t0}" data-t1="{t1}" data-left="{left}" '
                     f'data-plot="{plot}" data-width="{width}" ', 1))
    return svg


def lines(series: list[dict], t0: int, t1: int, *, label: str, lo: float, hi: float,
          width: int = 960, height: int = 300, hlines: tuple[dict, ...] = (),
          fmt=lambda v: f"{v:.3f}") -> Markup:
    """Lines over time. ``series``: {label, color, points: [{at, y, title, cls?}]};
    ``hlines``: {y, title} dashed horizontal references (a noise-floor threshold)."""
    left, right, top, bottom = 60, 170, 14, 34
    pw, ph = width - left - right, height - top - bottom
    span, yspan = max(t1 - t0, 1), (hi - lo) or 1.0
    x = lambda t: left + (t - t0) / span * pw  # noqa: E731
    y = lambda v: top + (1 - (min(max(v, lo), hi) - lo) / yspan) * ph  # noqa: E731
    out = []
    for i in range(5):
        v = lo + yspan * i / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   'class="grid"/>' + _text(left - 6, y(v) + 4, fmt(v), "end", "tick"))
    for t, text in time_ticks(t0, t1):
        out.append(_text(x(t), height - 10, text, "middle", "tick"))
    for h in hlines:
        out.append(f'<line class="ref" x1="{left}" x2="{left + pw}" y1="{y(h["y"]):.1f}" '
                   f'y2="{y(h["y"]):.1f}"><title>{escape(h["title"])}</title></line>'
                   + _text(left + pw + 6, y(h["y"]) + 4, h.get("label", h["title"])[:24], "start",
                         "ref-lbl"))
    for n, s in enumerate(series):
        pts = sorted(s["points"], key=lambda p: p["at"])
        if len(pts) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x(p['at']):.1f},{y(p['y']):.1f}"
                            for i, p in enumerate(pts))
            out.append(f'<path class="line" d="{path}" stroke="{s["color"]}"/>')
        for p in pts:
            out.append(f'<circle class="{p.get("cls", "dot")}" cx="{x(p["at"]):.1f}" '
                       f'cy="{y(p["y"]):.1f}" r="4.5" fill="{s["color"]}"'
                       f'{_attrs(data_value=round(p["y"], 6))}>'
                       f'<title>{escape(p["title"])}</title></circle>')
        out.append(f'<rect x="{left + pw + 8}" y="{top + 40 + n * 18}" width="10" height="10" '
                   f'fill="{s["color"]}"/>'
                   + _text(left + pw + 22, top + 49 + n * 18, s["label"][:22]))
    return _svg(width, height, out, label, "lines")


SAFE_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
                "#bab0ac")  # PALETTE without its reds: red means rollback


def distinct_colors(keys) -> dict[str, str]:
    """A colour per distinct key, in the order given, no two alike and none red (red marks
    rollbacks): the safe palette first, then hues spaced by the golden angle, skipping the
    reds (within 30 degrees of 0)."""
    out: dict[str, str] = {}
    for key in keys:
        if key in out:
            continue
        n = len(out)
        if n < len(SAFE_PALETTE):
            out[key] = SAFE_PALETTE[n]
            continue
        i = n - len(SAFE_PALETTE)
        hue = 30 + (i * 137.508) % 300  # 30..330 degrees: never red
        light = (38, 52, 66)[i // 7 % 3]
        out[key] = f"hsl({hue:.1f}, 58%, {light}%)"
    return out
