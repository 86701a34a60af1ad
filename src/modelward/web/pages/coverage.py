"""Eval coverage: the (prompt, model) digest pairs production used inside MW301's window,
drawn against what completed eval runs scored. Which pairs are unscored is MW301's own
verdict (``modelward check --select MW301``), so the page and the guard cannot disagree."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Request

from ...guards import config as check_config
from ...guards import registry, run
from ...ledger import evals as ledger_evals
from ...ledger.schema import decisions
from ...timefmt import now_us
from . import charts
from ._base import labels, page, store_of

MW301 = "MW301"


def production_pairs(conn, start: int) -> list[tuple]:
    """(prompt, model, decisions, first, last) per pair production used since ``start``."""
    d = decisions.c
    return conn.execute(
        sa.select(d.prompt_digest, d.model_digest, sa.func.count(), sa.func.min(d.at),
                  sa.func.max(d.at))
        .where(d.prompt_digest.is_not(None), d.at >= start)
        .group_by(d.prompt_digest, d.model_digest)
        .order_by(sa.func.count().desc())).all()


@page("/coverage")
def coverage_page(request: Request):
    store = store_of(request)
    now = now_us()
    cfg = check_config.load(store.settings)
    window = cfg.guard_options(MW301, registry.load(MW301).OPTIONS, store.settings)["window"]
    start = max(now - window, now - cfg.window) if cfg.window else now - window
    found = run(store, store.settings, select=MW301, now=now).findings
    unscored = {(f.evidence["prompt_digest"], f.evidence["model_digest"]): f
                for f in found if f.code == MW301}
    with store.read() as conn:
        pairs = production_pairs(conn, start)
        scored = ledger_evals.scored_pairs(conn)
        names = labels(conn, {p[0] for p in pairs} | {p[1] for p in pairs}
                       | {k[0] for k in scored} | {k[1] for k in scored})
    rows, table = [], []
    for prompt, model, n, first, last in pairs:
        finding = unscored.get((prompt, model))
        status = "unscored" if finding else "scored" if (prompt, model) in scored or (
            model is None and any(p == prompt for p, _m in scored)) else "not judged"
        color = {"unscored": charts.BAD, "scored": charts.GOOD}.get(status, charts.NEUTRAL)
        label = f"{names[prompt]} × {names[model] if model else 'no model'}"
        rows.append({"label": label, "value": n, "color": color, "key": f"{prompt}|{model}",
                     "title": f"{label}: {n:,} decisions, {status}"})
        table.append({"prompt": prompt, "model": model, "decisions": n, "first": first,
                      "last": last, "status": status, "finding": finding,
                      "scored_at": scored.get((prompt, model))})
    chart = charts.bars(rows, label="production decisions per prompt × model pair; green "
                        "scored by an eval run, red unscored", left=380, width=960)
    return "coverage.html", {"chart": chart, "table": table, "names": names, "start": start,
                             "scored": sorted(scored.items(), key=lambda kv: -(kv[1] or 0)),
                             "n_unscored": len(unscored),
                             "share": sum(r["decisions"] for r in table
                                          if r["status"] == "scored")
                             / max(sum(r["decisions"] for r in table), 1)}
