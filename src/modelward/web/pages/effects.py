"""The treatment effect per substrate regime drawn with its interval on a labelled axis (a
forest plot): a point at the effect, a line over its interval, a zero line, ticks, and the
metric's name on the axis. The figures are ``rollout.regimes``' (what ``modelward
experiment regimes`` prints); this module only draws them."""

from __future__ import annotations

import math

from markupsafe import Markup

from . import charts


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    out, t = [], first
    while t <= hi + step * 1e-9:
        out.append(round(t, 12))
        t += step
    return out


def forest(rows: list[dict], *, metric: str, level: float, label: str, width: int = 760,
           left: int = 190, row_h: int = 30) -> Markup:
    """``rows``: {label, effect, low, high, color, title, key}. One row per arm x regime;
    the axis spans every interval and zero."""
    if not rows:
        return Markup('<p class="empty">nothing to draw</p>')
    lo = min([0.0] + [r["low"] for r in rows])
    hi = max([0.0] + [r["high"] for r in rows])
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    plot = width - left - 30
    x = lambda v: left + (v - lo) / ((hi - lo) or 1.0) * plot  # noqa: E731
    top = 10
    base = top + row_h * len(rows)
    height = base + 52
    out = []
    for t in ticks:
        out.append(f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" '
                   f'y2="{base}"/>' + charts._text(x(t), base + 16, f"{t:+.3g}" if t else "0",
                                                   "middle", "tick"))
    out.append(f'<line class="axis zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 4}" '
               f'y2="{base + 4}"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left + plot}" y1="{base}" y2="{base}"/>')
    out.append(charts._text(left + plot / 2, base + 40,
                            f"{metric}: treatment − control, mean per subject "
                            f"({level:.0%} interval)", "middle", "axis-lbl"))
    for i, r in enumerate(rows):
        y = top + i * row_h + row_h / 2
        name = r["label"] if len(r["label"]) <= left // 7 else r["label"][:left // 7 - 1] + "…"
        title = charts.escape(r["title"])
        out.append(charts._text(left - 8, y + 4, name, "end"))
        out.append(f'<g class="effect"{charts._attrs(data_key=r["key"], data_effect=r["effect"], data_low=r["low"], data_high=r["high"])}>'  # noqa: E501
                   f'<title>{title}</title>'
                   f'<line class="ci" x1="{x(r["low"]):.1f}" x2="{x(r["high"]):.1f}" '
                   f'y1="{y:.1f}" y2="{y:.1f}" stroke="{r["color"]}"/>'
                   f'<line class="ci-end" x1="{x(r["low"]):.1f}" x2="{x(r["low"]):.1f}" '
                   f'y1="{y - 6:.1f}" y2="{y + 6:.1f}" stroke="{r["color"]}"/>'
                   f'<line class="ci-end" x1="{x(r["high"]):.1f}" x2="{x(r["high"]):.1f}" '
                   f'y1="{y - 6:.1f}" y2="{y + 6:.1f}" stroke="{r["color"]}"/>'
                   f'<circle class="est" cx="{x(r["effect"]):.1f}" cy="{y:.1f}" r="5" '
                   f'fill="{r["color"]}"/></g>')
    return charts._svg(width, height, out, label, "forest")
