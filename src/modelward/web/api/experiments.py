"""/api/v1/experiments: list, show, check (sample ratio, balance, correlation, ID order),
substrate regimes and recording exposures, as ``modelward experiment``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ...errors import NotFoundError, ValidationError
from ...guards import config as check_config
from ...guards import registry
from ...ledger import experiments as ledger_experiments
from ...rollout import report
from ...rollout.checks import experiment_of
from ...rollout.regimes import regime_report
from ..auth import READ, WRITE, require
from ..limits import body_limit
from ..names import encoded_tail, segment
from ._common import JSON, BatchError, ItemError, batch_schema, read_batch, store_of

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


@router.get("/experiments/{name:path}/check", dependencies=[Depends(require(*READ))])
def check_experiment(name: str, request: Request) -> dict:
    """Sample ratio, covariate balance (against MW402's pre-period population: the one
    named in modelward.toml, else the one recorded at creation), correlation with other
    experiments and ID order; ``alarm`` is true when a check fires (``modelward experiment
    check`` exits 1)."""
    if (whole := encoded_tail(request, name, "check")) is not None:
        return get_experiment(whole, request)
    store = store_of(request)
    opts = _thresholds(store.settings)
    with store.read() as conn:
        result = report.check_recorded(conn, store, name, opts=opts)
    return JSON({**result.to_dict(), "alarm": bool(result.problems)})


@router.get("/experiments/{name:path}/regimes", dependencies=[Depends(require(*READ))])
def experiment_regimes(name: str, request: Request) -> dict:
    """The experiment's exposures split by substrate regime, with the metric per arm per
    regime and the treatment-by-regime interaction."""
    if (whole := encoded_tail(request, name, "regimes")) is not None:
        return get_experiment(whole, request)
    with store_of(request).read() as conn:
        return JSON(regime_report(conn, experiment_of(conn, name)).to_dict())


_DIGEST = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
EXPOSURE_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["subject", "arm"],
    "description": "One exposure, as the SDK's expose() records it.",
    "properties": {
        "id": {"type": "string", "format": "uuid",
               "description": "Client-made UUID; without one the id is derived from the "
                              "item's content, so a re-sent batch is never duplicated."},
        "experiment": {"type": "string", "description": "Optional; must be the path's."},
        "subject": {"type": "string", "maxLength": 300},
        "arm": {"type": "string", "maxLength": 100},
        "at": {"anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
               "description": "Microseconds since the epoch, or ISO 8601 (default: now)."},
        **{f: _DIGEST for f in ledger_experiments.DIGEST_FIELDS},
        "vendor_model_id": {"type": "string", "maxLength": 300},
        "fingerprint_epoch": {"type": "integer", "minimum": 0},
        "metric": {"type": "number"},
        "extra": {"type": "object"},
    },
}


def record_exposures(store, name: str, raw: bytes) -> dict:
    """Validate every item of a batch for experiment ``name``, then write them all (one
    chain block) or nothing."""
    items = read_batch(raw, "exposures")
    with store.read() as conn:
        ledger_experiments.get(conn, name)  # 404 when the experiment does not exist
    objs = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("experiment", name) != name:
            item = _WrongExperiment(item.get("experiment"))
        elif isinstance(item, dict):
            item = {**item, "experiment": name}
        objs.append((i, item))

    def convert(obj, *, line):
        if isinstance(obj, _WrongExperiment):
            raise ValidationError(f"names experiment {str(obj.name)[:80]!r}, not {name!r} "
                                  "of the path", field="experiment")
        return obj
    try:
        res = ledger_experiments.import_exposures(store, objs, where="index", convert=convert)
    except ValidationError as exc:
        if not exc.problems:
            raise
        raise BatchError("exposures", [ItemError(p, "exposures", p.position)
                                       for p in exc.problems]) from None
    return {"recorded": res.inserted, "duplicates": res.duplicates}


class _WrongExperiment:
    def __init__(self, name) -> None:
        self.name = name


@router.post("/experiments/{name:path}/exposures", dependencies=[Depends(require(*WRITE))],
             openapi_extra=batch_schema(EXPOSURE_SCHEMA, "exposures"))
@body_limit("max_batch_body")
async def post_exposures(name: str, request: Request) -> dict:
    """Record a batch of the experiment's exposures (a JSON array, or ``{"exposures":
    [...]}``): all or nothing, every bad item named by index. An item's arm must be one of
    the experiment's; an item without an id is identified by its content, so sending the
    same batch again records nothing new (``duplicates`` counts the ids already recorded)."""
    if (whole := encoded_tail(request, name, "exposures")) is not None:
        raise NotFoundError(f"POST of experiment {whole!r} itself: exposures are posted to "
                            f"/api/v1/experiments/{segment(whole)}/exposures")
    raw = await request.body()
    return await run_in_threadpool(record_exposures, store_of(request), name, raw)


@router.get("/experiments/{name:path}", dependencies=[Depends(require(*READ))])
def get_experiment(name: str, request: Request) -> dict:
    """One experiment: salt, arms and the balance report of its creation. A name may hold
    ``/`` (send it as is, or as ``%2F``); declared after the sub-routes, so
    ``…/NAME/check`` is the check of NAME and ``…/NAME%2Fcheck`` the experiment
    ``NAME/check``."""
    with store_of(request).read() as conn:
        return JSON(ledger_experiments.get(conn, name).to_dict())
