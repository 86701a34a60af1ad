"""Fingerprint similarity over time: per embedder alias, each run's similarity to the
baseline of its substrate epoch (1 − the magnitude ``fingerprint run`` judged), with the
threshold a change must cross; runs judged ``changed`` are marked."""

from __future__ import annotations

from fastapi import Request

from ...ledger import fingerprints as ledger_fp
from . import charts
from ._base import labels, page, store_of, when


def similarity(run) -> float:
    return 1.0 if run.magnitude is None else 1.0 - run.magnitude


@page("/fingerprints")
def fingerprints_page(request: Request, alias: str | None = None):
    with store_of(request).read() as conn:
        runs = ledger_fp.history(conn, alias) if alias else ledger_fp.all_runs(conn)
        names = labels(conn, {r.embedder_digest for r in runs})
    by_alias: dict[str, list] = {}
    for r in sorted(runs, key=lambda r: r.at):
        by_alias.setdefault(r.embedder_alias, []).append(r)
    series, hlines, lows = [], [], []
    for name, rs in sorted(by_alias.items()):
        color = charts.color_of(name)
        pts = [{"at": r.at, "y": similarity(r), "cls": f"dot {r.verdict}",
                "title": f"{name} {when(r.at)}: similarity {similarity(r):.4f} to the epoch "
                         f"{r.epoch} baseline, {r.verdict} ({names[r.embedder_digest]}"
                         + (f", vendor {r.vendor_model_id}" if r.vendor_model_id else "")
                         + ")"} for r in rs]
        series.append({"label": name, "color": color, "points": pts})
        lows += [p["y"] for p in pts]
        judged = [r for r in rs if r.summary.get("comparison")]
        if judged:
            cut = 1.0 - judged[-1].summary["comparison"]["threshold"]
            hlines.append({"y": cut, "label": f"threshold {cut:.4f}",
                           "title": f"{name}: a run below {cut:.4f} is judged changed"})
            lows.append(cut)
    chart = None
    if runs:
        lo = min(lows)
        lo = max(-1.0, lo - max((1.0 - lo) * 0.1, 0.002))
        t0, t1 = min(r.at for r in runs), max(r.at for r in runs)
        pad = max((t1 - t0) // 20, 3_600_000_000)
        chart = charts.lines(series, t0 - pad, t1 + pad, lo=lo, hi=1.0, hlines=tuple(hlines),
                             label="fingerprint similarity to the epoch baseline over time",
                             fmt=lambda v: f"{v:.3f}")
    return "fingerprints.html", {"chart": chart, "by_alias": by_alias, "names": names,
                                 "alias": alias, "similarity": similarity}
