"""/api/v1/experiments: list, show, check (sample ratio, balance, correlation, ID order)
and substrate regimes, as ``modelward experiment``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ...guards import config as check_config
from ...guards import registry
from ...ledger import experiments as ledger_experiments
from ...rollout import report
from ...rollout.checks import experiment_of
from ...rollout.regimes import regime_report
from ..auth import READ, require
from ._common import JSON, store_of

router = APIRouter(tags=["experiments"])


def _thresholds(settings) -> dict:
    """MW401-MW403's options from modelward.toml, so the check flags what the guards fire
    on (the same mapping ``modelward experiment check`` uses)."""
    cfg = check_config.load(settings)
    o = {c: cfg.guard_options(c, registry.load(c).OPTIONS, settings)
         for c in ("MW401", "MW402", "MW403")}
    return {"srm_alpha": o["MW401"]["alpha"], "min_count": o["MW401"]["min_count"],
            "max_smd": o["MW402"]["max_smd"], "smd_alpha": o["MW402"]["alpha"],
            "smd_draws": o["MW402"]["draws"],
            "corr_alpha": o["MW403"]["alpha"], "min_shared": o["MW403"]["min_shared"],
            # the pre-period population MW402 judges balance on (rollout.population)
            **{k: o["MW402"][k] for k in ("pre_period", "subject_column", "covariates")}}


@router.get("/experiments", dependencies=[Depends(require(*READ))])
def list_experiments(request: Request) -> list[dict]:
    """Every experiment: name, salt, arms, creation time, balance report."""
    with store_of(request).read() as conn:
        return JSON([r.to_dict() for r in ledger_experiments.list_all(conn)])


@router.get("/experiments/{name}", dependencies=[Depends(require(*READ))])
def get_experiment(name: str, request: Request) -> dict:
    """One experiment: salt, arms and the balance report of its creation."""
    with store_of(request).read() as conn:
        return JSON(ledger_experiments.get(conn, name).to_dict())


@router.get("/experiments/{name}/check", dependencies=[Depends(require(*READ))])
def check_experiment(name: str, request: Request) -> dict:
    """Sample ratio, covariate balance (against MW402's pre-period population: the one
    named in modelward.toml, else the one recorded at creation), correlation with other
    experiments and ID order; ``alarm`` is true when a check fires (``modelward experiment
    check`` exits 1)."""
    store = store_of(request)
    opts = _thresholds(store.settings)
    with store.read() as conn:
        result = report.check_recorded(conn, store, name, opts=opts)
    return JSON({**result.to_dict(), "alarm": bool(result.problems)})


@router.get("/experiments/{name}/regimes", dependencies=[Depends(require(*READ))])
def experiment_regimes(name: str, request: Request) -> dict:
    """The experiment's exposures split by substrate regime, with the metric per arm per
    regime and the treatment-by-regime interaction."""
    with store_of(request).read() as conn:
        return JSON(regime_report(conn, experiment_of(conn, name)).to_dict())
