"""Experiment balance: sample ratio (observed against allocated counts), covariate SMD per
covariate, and substrate regimes, from ``rollout.report.check_recorded`` and the MW404
guard's ``regime_report`` (what ``modelward experiment check|regimes`` print). Balance is
judged on MW402's pre-period population (``rollout.population.pre_period_of`` with MW402's
options) by MW402's randomisation test (``rollout.checks.balance``); the effect per regime
is drawn with the interval ``rollout.regimes`` computes.

An experiment's name may hold ``/``, ``%``, spaces, any Unicode: the page is
``/experiments/{name:path}`` (links percent-encode the name as one segment, see
``web.names``); a name that is all dots is shown at ``/experiments?name=..``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from fastapi import Request

from ...ledger import experiments as ledger_experiments
from ...ledger.chain import last_block
from ...rollout import report
from ...rollout.checks import experiment_of
from ...rollout.regimes import LEVEL, regime_report
from ..api.experiments import _thresholds  # MW401-MW403 options: flag what the guards fire on
from ..names import experiment_href
from . import charts, effects
from ._base import env, page, store_of, when

# every template links to an experiment with ``{{ name | experiment_href }}``
env.filters["experiment_href"] = experiment_href


@page("/experiments")
def experiments_page(request: Request, name: str | None = None):
    if name:  # a name no path segment can carry (".", ".."), or a link typed by hand
        return experiment_page(request=request, name=name)
    with store_of(request).read() as conn:
        found = ledger_experiments.list_all(conn)
    return "experiments.html", {"experiments": found}


def srm_chart(srm) -> object:
    rows = []
    for arm, n in srm.counts.items():
        exp = srm.expected.get(arm, 0.0)
        rows.append({"label": f"{arm} observed", "value": n, "key": f"{arm}:observed",
                     "color": charts.BAD if srm.alarm else charts.GOOD})
        rows.append({"label": f"{arm} expected", "value": exp, "key": f"{arm}:expected",
                     "color": charts.NEUTRAL})
    return charts.bars(rows, label="sample ratio: observed and expected subjects per arm")


def smd_chart(balance: list, max_smd: float) -> object:
    rows = [{"label": f"{d.covariate} ({d.arm})", "value": d.smd or 0.0,
             "key": d.covariate, "color": charts.BAD if d.flagged else charts.GOOD,
             "title": f"{d.covariate}: {d.arm} mean {d.mean_arm:.3g} vs {d.control} "
                      f"{d.mean_control:.3g}; SMD {d.smd:+.3f}, p family-wise "
                      f"{d.p_adjusted if d.p_adjusted is not None else float('nan'):.2g}"
                      + (" — FLAGGED" if d.flagged else "")}
            for d in balance if d.smd is not None]
    return charts.bars(rows, label="standardized mean difference per covariate",
                       refs=((-max_smd, ""), (max_smd, f"±{max_smd}")),
                       fmt=lambda v: f"{v:+.2f}")


def regime_charts(reg) -> tuple[object, object]:
    if not reg.regimes:
        return None, None
    rows = [{"label": r.label, "spans": [{
        "start": r.first_at, "end": r.last_at, "color": charts.color_of(r.label),
        "key": r.label, "title": f"{r.label}: {r.exposures:,} exposures "
                                 f"{when(r.first_at)} – {when(r.last_at)}; "
        + ", ".join(f"{a} mean {m.mean:.3g}" if m.mean is not None else f"{a} no metric"
                    for a, m in r.arms.items())}]} for r in reg.regimes]
    t0 = min(r.first_at for r in reg.regimes)
    t1 = max(r.last_at for r in reg.regimes)
    lanes = charts.lanes(rows, t0, max(t1, t0 + 1), label="substrate regimes over time")
    rows = [{"label": f"{i.arm} in {label}", "effect": e["effect"], "low": e["low"],
             "high": e["high"], "key": f"{i.arm}:{label}", "color": charts.color_of(label),
             "title": f"{i.arm} − {i.control} in {label}: {reg.metric} {e['effect']:+.4g}, "
                      f"{e['level']:.0%} interval [{e['low']:+.4g}, {e['high']:+.4g}] "
                      f"(se {e['se']:.3g}; {e['subjects_arm']:,} and "
                      f"{e['subjects_control']:,} subjects)"}
            for i in reg.interactions for label, e in i.effects.items()
            if e.get("effect") is not None]
    bars = effects.forest(rows, metric=reg.metric, level=LEVEL,
                          label=f"treatment effect on {reg.metric} per regime, with its "
                                "interval") if rows else None
    return lanes, bars


CACHED = 32  # experiments whose check the page keeps per server process
_LOCK = threading.Lock()


def _file_stamp(path) -> tuple | None:
    try:
        st = Path(path).stat()
    except (OSError, TypeError, ValueError):
        return None
    return (str(path), st.st_mtime_ns, st.st_size)


def _checked(request: Request, store, name: str, opts: dict):
    """The experiment's check and regime report, computed again only when the ledger has a
    new block (every write seals one: exposures, experiments, artifacts), the options
    change, or modelward.toml or a configured pre-period file changes; MW402's
    randomisation test alone takes seconds on a large experiment."""
    config = store.settings.config_path
    pre = opts.get("pre_period")
    if pre and config is not None and not Path(pre).is_absolute():
        pre = config.resolve().parent / pre
    with store.read() as conn:
        head = last_block(conn)
        key = (name, head, repr(sorted(opts.items())), _file_stamp(config), _file_stamp(pre))
        cache = getattr(request.app.state, "experiment_checks", None)
        if cache is None:
            cache = request.app.state.experiment_checks = OrderedDict()
        with _LOCK:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        result = report.check_recorded(conn, store, name, opts=opts)
        reg = regime_report(conn, experiment_of(conn, name))
    with _LOCK:
        cache[key] = (result, reg)
        while len(cache) > CACHED:
            cache.popitem(last=False)
    return result, reg


@page("/experiments/{name:path}")
def experiment_page(request: Request, name: str):
    store = store_of(request)
    opts = _thresholds(store.settings)
    result, reg = _checked(request, store, name, opts)
    regime_lanes, effect_bars = regime_charts(reg)
    return "experiment.html", {
        "name": name, "r": result, "reg": reg, "opts": opts,
        "srm_chart": srm_chart(result.srm) if result.srm else None,
        "smd_chart": smd_chart(result.balance, opts["max_smd"]) if result.balance else None,
        "regime_chart": regime_lanes, "effect_chart": effect_bars}
