"""``modelward experiment create|list|show|assign|expose|check|audit|regimes``: salted, balanced
assignment and the checks that say whether an experiment's arms can be compared."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import typer

from ..errors import NotFoundError, SchemaError, ValidationError
from ..timefmt import iso
from ._common import JSON_OPTION, importing, opened, out, print_json
from ._group import typer_app
from .experiments_render import render_check, render_regimes

experiment_app = typer_app(help="Experiments: salted (balance-searched) assignment, "
                             "exposures, and the checks on them.", no_args_is_help=True)

SUBJECT_COLUMN = typer.Option("subject", "--subject-column",
                              help="The files' subject column (default subject).")
COVARIATES = typer.Option(None, "--covariates",
                          help="Numeric columns to compare, comma-separated (default: all).")


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _arms_text(arms) -> str:
    return ", ".join(f"{n}={w:g}" for n, w in arms)


def _opts() -> dict:
    """MW401-MW403's thresholds from modelward.toml, so the commands flag what the guards
    fire on."""
    from ..guards import config as check_config
    from ..guards import registry
    from ._common import settings

    s = settings()
    cfg = check_config.load(s)
    o = {c: cfg.guard_options(c, registry.load(c).OPTIONS, s) for c in ("MW401", "MW402", "MW403")}
    return {"srm_alpha": o["MW401"]["alpha"], "min_count": o["MW401"]["min_count"],
            "max_smd": o["MW402"]["max_smd"], "smd_alpha": o["MW402"]["alpha"],
            "smd_draws": o["MW402"]["draws"],
            "corr_alpha": o["MW403"]["alpha"], "min_shared": o["MW403"]["min_shared"],
            # the pre-period population MW402 judges balance on (rollout.population)
            **{k: o["MW402"][k] for k in ("pre_period", "subject_column", "covariates")}}


def _progress(enabled: bool):
    """A Rich progress bar on a terminal; None when piped or with --json."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    return Progress(transient=True, console=None)


@experiment_app.command("create")
def create_cmd(
    name: str = typer.Argument(..., help="Experiment name (unique; never reused)."),
    arms: str = typer.Option(..., "--arms", help="Arms and weights in order: control=95,treatment=5."),
    salt: str = typer.Option(None, "--salt", help="Use this salt (default: a random one, "
                             "or the balance-searched one with --balance-on)."),
    balance_on: Path = typer.Option(None, "--balance-on", help="Pre-period population (CSV or "
                                    "JSONL: a subject column and numeric covariates)."),
    covariates: str = COVARIATES,
    candidates: int = typer.Option(100, "--candidates", help="Salts to try with --balance-on."),
    subject_column: str = SUBJECT_COLUMN,
    metric: str = typer.Option(None, "--metric", help="What the exposures' metric measures "
                               "(e.g. resolved_rate): named in the regimes report and the "
                               "dashboard."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an experiment: its salt and arms are fixed from then on."""
    from ..ledger import artifacts
    from ..ledger import experiments as ledger_experiments
    from ..rollout.assignment import parse_arms
    from ..rollout.population import read_table

    parsed = parse_arms(arms, field="--arms")
    if metric is not None and not (0 < len(metric.strip()) <= 100):
        raise ValidationError("the metric name must be 1 to 100 characters", field="--metric")
    if salt is not None and balance_on is not None:
        raise ValidationError("give --salt or --balance-on, not both", field="--salt")
    if balance_on is None and (covariates or candidates != 100):
        raise ValidationError("--covariates and --candidates need --balance-on",
                              field="--balance-on")
    with opened() as store:
        with store.read() as conn:  # refuse a taken name before a long search
            try:
                ledger_experiments.get(conn, name)
            except NotFoundError:
                pass
            else:
                raise ValidationError(f"experiment {name!r} already exists", field="NAME",
                                      hint="experiments never change: create one under a new name")
        balance = None
        if balance_on is not None:
            from ..rollout.search import search

            table = read_table(balance_on, subject_column=subject_column)
            cols = table.covariates(_split(covariates))
            bar = _progress(not as_json)
            if bar is not None:
                with bar:
                    task = bar.add_task(f"trying {candidates} salts", total=candidates)
                    result = search(name, parsed, table.subjects,
                                    {c: table.numeric[c] for c in cols}, candidates=candidates,
                                    progress=lambda done, _t: bar.update(task, completed=done))
            else:
                result = search(name, parsed, table.subjects, {c: table.numeric[c] for c in cols},
                                candidates=candidates)
            data = balance_on.read_bytes()
            reg = artifacts.register_bytes(store, "dataset", data,
                                           name=f"experiment/{name}/pre-period")
            salt = result.salt
            balance = {**result.to_dict(), "population": {
                "source": str(balance_on), "dataset": reg.artifact.digest,
                "subject_column": subject_column, "subjects": len(table),
                "covariates": cols}}
        elif salt is None:
            salt = secrets.token_hex(16)
        with store.write() as conn:
            rec = ledger_experiments.create(conn, name, salt, list(parsed), balance=balance,
                                            meta={"metric": metric} if metric else None)
    if as_json:
        print_json(rec.to_dict())
        return
    lines = [f"created experiment {name}: {_arms_text(rec.arms)}; salt {rec.salt}"]
    if balance is not None:
        lines += [f"balanced on {balance['population']['subjects']:,} subjects of {balance_on} "
                  f"over {candidates} candidate salts ({balance['seconds']:.1f} s)",
                  f"  largest |SMD| {balance['achieved']:.4f} (candidate 0: "
                  f"{balance['candidate_0']:.4f}, median {balance['median']:.4f}, worst "
                  f"{balance['worst']:.4f})"]
        for arm, per in balance["smd"].items():
            lines.append(f"  {arm} vs control: "
                         + ", ".join(f"{c} {d:+.4f}" for c, d in per.items()))
    out.print("\n".join(lines))


@experiment_app.command("list")
def list_cmd(as_json: bool = JSON_OPTION) -> None:
    """List experiments."""
    from ..ledger import experiments as ledger_experiments

    with opened() as store, store.read() as conn:
        recs = ledger_experiments.list_all(conn)
    if as_json:
        print_json([r.to_dict() for r in recs])
        return
    if not recs:
        out.print("no experiments")
        return
    for r in recs:
        balanced = " (balance-searched)" if r.balance else ""
        out.print(f"{r.name}  {_arms_text(r.arms)}  created {iso(r.created_at)}{balanced}")


@experiment_app.command("show")
def show_cmd(name: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Show an experiment: salt, arms, balance report."""
    from ..ledger import experiments as ledger_experiments

    with opened() as store, store.read() as conn:
        rec = ledger_experiments.get(conn, name)
    if as_json:
        print_json(rec.to_dict())
        return
    lines = [f"experiment {rec.name}", f"  arms     {_arms_text(rec.arms)}",
             f"  salt     {rec.salt}", f"  created  {iso(rec.created_at)}"]
    if rec.balance:
        b, pop = rec.balance, rec.balance.get("population", {})
        lines.append(f"  balance  {b['criterion']} {b['achieved']:.4f} over {b['candidates']} "
                     f"candidates ({b['candidate_salts']}); {pop.get('subjects', 0):,} subjects "
                     f"of {pop.get('source')} (dataset {pop.get('dataset')})")
    out.print("\n".join(lines))


@experiment_app.command("assign")
def assign_cmd(name: str = typer.Argument(...),
               subjects: list[str] = typer.Argument(..., help="Subject ids."),
               as_json: bool = JSON_OPTION) -> None:
    """Print the arm (and uniform draw) of each subject."""
    from ..rollout.checks import experiment_of

    with opened() as store, store.read() as conn:
        exp = experiment_of(conn, name)
    rows = [{"subject": s, "uniform": exp.uniform(s), "arm": exp.assign(s)} for s in subjects]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        out.print(f"{r['subject']}  {r['uniform']!r}  {r['arm']}")


@experiment_app.command("expose")
def expose_cmd(
    file: Path = typer.Option(..., "--file", help="Exposures to record: JSON lines (.jsonl) or "
                              "CSV (.csv) with a header; fields as the SDK's expose()."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record exposures made elsewhere; any bad line rejects the file and nothing is
    written. A line without an id is identified by its content, so importing the same
    file again records nothing new."""
    import orjson

    from ..csvfile import decode, read_csv
    from ..display import plural
    from ..ledger import experiments as ledger_experiments
    from ._common import read_input

    data = read_input(file, "--file")
    name = str(file)
    convert = None
    if file.suffix.lower() == ".csv":
        table = read_csv(data, name=name)
        items: list = table.rows

        def convert(cells, *, line):
            return ledger_experiments.csv_exposure(cells, line=line)
    else:
        items = []
        for number, line in enumerate(decode(data, name).split("\n"), start=1):
            if not line.strip():
                continue
            try:
                items.append((number, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                items.append((number, _BadJson(str(exc))))

        def convert(obj, *, line):
            if isinstance(obj, _BadJson):
                raise ValidationError(f"not valid JSON ({obj.reason})", line=line)
            return obj
    if not items:
        raise ValidationError(f"{name} holds no exposures", field="--file")
    with opened() as store, importing(as_json, prefix=f"{name}: "):
        res = ledger_experiments.import_exposures(store, items, convert=convert)
    if as_json:
        print_json({"ok": True, "recorded": res.inserted, "duplicates": res.duplicates})
    else:
        out.print(f"recorded {plural(res.inserted, 'exposure')} from {name}"
                  + (f" ({res.duplicates} already recorded)" if res.duplicates else ""))


class _BadJson:
    """A line of a JSONL file that did not parse (reported with the other bad lines)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@experiment_app.command("check")
def check_cmd(
    name: str = typer.Argument(...),
    pre_period: Path = typer.Option(None, "--pre-period", help="Pre-period population (CSV or "
                                    "JSONL); default: MW402's pre_period in modelward.toml, "
                                    "else the one recorded at creation."),
    covariates: str = COVARIATES,
    subject_column: str = SUBJECT_COLUMN,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sample ratio, covariate balance, correlation with other experiments and ID order.
    Exits 1 when a check alarms."""
    from ..rollout import report

    with opened() as store, store.read() as conn:
        result = report.check_recorded(conn, store, name, pre_period=pre_period,
                                       covariates=_split(covariates),
                                       subject_column=subject_column, opts=_opts())
    _finish(result, as_json)


@experiment_app.command("audit")
def audit_cmd(
    assignments: Path = typer.Option(..., "--assignments", help="CSV or JSONL of subject,arm "
                                     "made elsewhere (e.g. an existing hash(id) % 100 flag)."),
    pre_period: Path = typer.Option(None, "--pre-period", help="Pre-period population."),
    arms: str = typer.Option(None, "--arms", help="The intended allocation, e.g. "
                             "control=95,treatment=5 (needed for the sample ratio test)."),
    control: str = typer.Option(None, "--control", help="The control arm (default: control, or "
                                "the first arm)."),
    arm_column: str = typer.Option("arm", "--arm-column", help="The assignments' arm column."),
    against: list[Path] = typer.Option(None, "--against", help="Another experiment's "
                                       "assignments (subject,arm), for the correlation test "
                                       "(repeatable)."),
    covariates: str = COVARIATES,
    subject_column: str = SUBJECT_COLUMN,
    as_json: bool = JSON_OPTION,
) -> None:
    """Check an assignment made outside modelward; exits 1 when a check alarms."""
    from ..ledger.engine import Store
    from ..rollout import report
    from ._common import settings

    store = Store(settings())
    try:
        try:
            store.ensure_schema(create=False)
        except SchemaError:
            store.dispose()
            store = None  # no ledger: nothing to correlate with
        result = report.audit(store, assignments, pre_period=pre_period, arms=arms,
                              control=control, arm_column=arm_column,
                              covariates=_split(covariates), subject_column=subject_column,
                              opts=_opts(), against=list(against or []))
    finally:
        if store is not None:
            store.dispose()
    _finish(result, as_json)


def _finish(result, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
    else:
        out.print(render_check(result))
    if result.problems:
        raise typer.Exit(1)


@experiment_app.command("regimes")
def regimes_cmd(name: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Split an experiment's exposures by substrate regime; metric per arm per regime and a
    treatment-by-regime interaction test."""
    from ..rollout.checks import experiment_of
    from ..rollout.regimes import regime_report

    with opened() as store, store.read() as conn:
        exp = experiment_of(conn, name)
        rep = regime_report(conn, exp)
        labels = _labels(conn, rep)
    if as_json:
        print_json(rep.to_dict())
        return
    out.print(render_regimes(rep, labels))


def _labels(conn, rep) -> dict[str, str]:
    from ..display import short_digest
    from ..ledger import artifacts

    digests = {v for r in rep.regimes for v in r.key.values()
               if isinstance(v, str) and v.startswith("sha256:")}
    found = artifacts.find_many(conn, digests)
    return {d: (f"{a.name}@{a.version}" if a.version else a.name) + f" ({short_digest(d)})"
            if (a := found.get(d)) else short_digest(d) for d in digests}


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
