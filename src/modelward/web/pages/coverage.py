"""Eval coverage: the (prompt, model) digest pairs production used inside MW301's window,
drawn against what completed eval runs scored. Which pairs are unscored is
``modelward.evals.coverage``'s verdict, the one MW301 reports, so the page and the guard
cannot disagree."""

from __future__ import annotations

from fastapi import Request

from ...evals.coverage import coverage
from ...guards import config as check_config
from ...guards import registry
from ...timefmt import now_us
from . import charts
from ._base import labels, page, store_of

MW301 = "MW301"


@page("/coverage")
def coverage_page(request: Request):
    store = store_of(request)
    now = now_us()
    cfg = check_config.load(store.settings)
    window = cfg.guard_options(MW301, registry.load(MW301).OPTIONS, store.settings)["window"]
    start = max(now - window, now - cfg.window) if cfg.window else now - window
    with store.read() as conn:
        cov = coverage(conn, since=start)
        scored = cov.scored
        names = labels(conn, {p.prompt for p in cov.pairs} | {p.model for p in cov.pairs}
                       | {k[0] for k in scored} | {k[1] for k in scored})
    rows = []
    for p in cov.pairs:
        color = {"unscored": charts.BAD, "scored": charts.GOOD}.get(p.status, charts.NEUTRAL)
        label = f"{names[p.prompt]} × {names[p.model] if p.model else 'no model'}"
        rows.append({"label": label, "value": p.decisions, "color": color,
                     "key": f"{p.prompt}|{p.model}",
                     "title": f"{label}: {p.decisions:,} decisions, {p.status}"})
    chart = charts.bars(rows, label="production decisions per prompt × model pair; green "
                        "scored by an eval run, red unscored", left=380, width=960)
    return "coverage.html", {"chart": chart, "table": cov.pairs, "names": names,
                             "start": start,
                             "scored": sorted(scored.items(), key=lambda kv: -(kv[1] or 0)),
                             "n_unscored": len(cov.unscored), "share": cov.scored_share}
