"""The full experiment report behind ``modelward experiment check`` and ``audit``: every
check of :mod:`.checks` over one experiment, and the list of problems that makes the
command exit 1. Thresholds come from the caller (the CLI reads MW401-MW403's options from
modelward.toml, so the command flags what the guards fire on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ValidationError
from . import checks
from .assignment import parse_arms
from .balance import Difference, Independence, OrderTest, SampleRatio
from .population import Table, pre_period_of, read_table

DEFAULTS = {"srm_alpha": 0.001, "min_count": 100, "max_smd": 0.1, "smd_alpha": 0.05,
            "smd_draws": 1000,
            "corr_alpha": 0.001, "min_shared": 100}


@dataclass
class CheckResult:
    experiment: dict
    basis: str  # "exposures", "salt" (planned, over the pre-period) or "assignments"
    subjects: int
    multi_arm: int = 0
    mismatched: int | None = None
    srm: SampleRatio | None = None
    pre_period: dict | None = None
    balance: list[Difference] = field(default_factory=list)
    correlations: list[Independence] = field(default_factory=list)
    order: list[OrderTest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "basis": self.basis, "subjects": self.subjects,
                "multi_arm_subjects": self.multi_arm, "mismatched_subjects": self.mismatched,
                "sample_ratio": self.srm.to_dict() if self.srm else None,
                "pre_period": self.pre_period, "balance": [d.to_dict() for d in self.balance],
                "correlations": [c.to_dict() for c in self.correlations],
                "order": [t.to_dict() for t in self.order], "problems": self.problems,
                "notes": self.notes}


def _judge(result: CheckResult) -> None:
    if result.multi_arm:
        result.problems.append(f"{result.multi_arm:,} subjects recorded in more than one arm")
    if result.mismatched:
        result.problems.append(f"{result.mismatched:,} subjects recorded in another arm than "
                               "the salt gives them")
    if result.srm is not None and result.srm.alarm:
        result.problems.append(f"sample ratio mismatch (p = {result.srm.p_value:.2g})")
    for d in result.balance:
        if d.flagged:
            result.problems.append(f"{d.arm} differs from {d.control} on {d.covariate} "
                                   f"(SMD {d.smd:+.2f})")
    for c in result.correlations:
        if c.alarm:
            result.problems.append(f"arms correlate with {c.other}'s (p = {c.p_adjusted:.2g})")
    for t in result.order:
        if t.flagged:
            result.problems.append(f"the arm follows {t.test}"
                                   + (f" ({t.arm})" if t.arm else "")
                                   + f" (p = {t.p_adjusted:.2g})")


def _balance(result: CheckResult, assign: checks.Assignments, table: Table | None,
             covariates, opts: dict) -> None:
    if table is None:
        result.notes.append("no pre-period population: covariate balance not checked")
        return
    diffs, matched = checks.balance(assign, table, covariates, max_smd=opts["max_smd"],
                                    alpha=opts["smd_alpha"], draws=opts["smd_draws"])
    result.balance = diffs
    result.pre_period = {"source": table.source, "digest": table.digest,
                         "subjects": len(table), "matched": matched}


def check_recorded(conn, store, name: str, *, pre_period: Path | None = None,
                   covariates: list[str] | None = None, subject_column: str = "subject",
                   opts: dict | None = None) -> CheckResult:
    """Every check of a recorded experiment, over its exposures (before any: over the
    assignment its salt gives the pre-period population). The pre-period population is
    ``pre_period`` (a file, relative to the working directory), else MW402's: ``opts``'
    ``pre_period`` (relative to modelward.toml's directory), else the one recorded at
    creation (:func:`~.population.pre_period_of`, as MW402 reads it)."""
    opts = {**DEFAULTS, **(opts or {})}
    exp = checks.experiment_of(conn, name)
    if pre_period is not None:
        src = pre_period_of(exp, pre_period=pre_period, subject_column=subject_column,
                            covariates=covariates)
    else:
        config = store.settings.config_path
        src = pre_period_of(exp, pre_period=opts.get("pre_period"),
                            subject_column=opts.get("subject_column") or "subject",
                            covariates=covariates or opts.get("covariates"),
                            base=config.resolve().parent if config is not None else None)
    table = src.open(store) if src is not None else None
    covariates = src.covariates if src is not None else covariates
    assign = checks.recorded(conn, exp)
    basis = "exposures"
    if not assign.subjects and not assign.multi_arm:
        if table is None:
            raise ValidationError(f"{name} has no exposures yet and no pre-period population",
                                  field="--pre-period",
                                  hint="record exposures, or pass --pre-period FILE to check "
                                       "the assignment the salt gives that population")
        assign, basis = checks.planned(exp, table), "salt"
    result = CheckResult({"name": exp.name, "salt": exp.salt, "control": exp.control,
                          "arms": [{"name": n, "weight": w} for n, w in exp.arms]},
                         basis, len(assign.subjects), multi_arm=len(assign.multi_arm))
    if basis == "exposures":
        result.mismatched = checks.mismatched(exp, assign)
    result.srm = checks.srm(assign, exp.shares, alpha=opts["srm_alpha"],
                            min_count=opts["min_count"])
    _balance(result, assign, table, covariates, opts)
    if basis == "exposures":
        result.correlations = checks.correlations(conn, assign, exp.name,
                                                  alpha=opts["corr_alpha"],
                                                  min_shared=opts["min_shared"])
    result.order = checks.order(assign, table, alpha=opts["corr_alpha"])
    checks.adjust(result.correlations, result.order, opts["corr_alpha"])
    _judge(result)
    return result


def audit(store, assignments: Path, *, pre_period: Path | None = None, arms: str | None = None,
          control: str | None = None, arm_column: str = "arm",
          covariates: list[str] | None = None, subject_column: str = "subject",
          opts: dict | None = None, against: list[Path] | None = None) -> CheckResult:
    """Every check of an assignment made elsewhere (a file of subject and arm); correlation
    with the experiments recorded in ``store`` when there is a ledger, and with the other
    assignment files ``against`` (each subject,arm, read like ``assignments``)."""
    opts = {**DEFAULTS, **(opts or {})}
    atable = read_table(assignments, subject_column=subject_column, text_columns=(arm_column,))
    if arm_column not in atable.text:
        raise ValidationError(f"{assignments} has no {arm_column!r} column", field="--arm-column",
                              hint="columns: " + ", ".join([*atable.text, *atable.numeric]))
    pairs = [(s, a) for s, a in zip(atable.subjects, atable.text[arm_column], strict=True) if a]
    seen = sorted({a for _, a in pairs})
    shares = None
    if arms:
        parsed = parse_arms(arms, field="--arms")
        names = [n for n, _ in parsed]
        total = sum(w for _, w in parsed)
        shares = {n: w / total for n, w in parsed}
    else:
        names = seen
    if control is None:
        control = "control" if "control" in names else (names[0] if names else "")
    if control not in names:
        raise ValidationError(f"{control!r} is not one of the arms ({', '.join(names)})",
                              field="--control")
    if len(set(names) | set(seen)) < 2:
        raise ValidationError(f"{assignments} holds a single arm; nothing to compare",
                              field="--assignments")
    assign = checks.from_pairs(pairs, names, control)
    result = CheckResult({"name": None, "salt": None, "control": control, "source": str(assignments),
                          "arms": [{"name": n, "share": shares.get(n) if shares else None}
                                   for n in names]},
                         "assignments", len(assign.subjects))
    if shares is not None:
        result.srm = checks.srm(assign, shares, alpha=opts["srm_alpha"],
                                min_count=opts["min_count"])
    else:
        result.notes.append("no --arms allocation given: sample ratio not checked")
    table = read_table(pre_period, subject_column=subject_column) if pre_period else None
    _balance(result, assign, table, covariates, opts)
    if store is not None:
        with store.read() as conn:
            result.correlations = checks.correlations(conn, assign, None,
                                                      alpha=opts["corr_alpha"],
                                                      min_shared=opts["min_shared"])
    elif not against:
        result.notes.append("no ledger: correlation with other experiments not checked")
    for path in against or []:
        other = _assignments_file(path, arm_column, subject_column)
        res = checks.pair_test(assign, str(path), other, alpha=opts["corr_alpha"],
                               min_shared=opts["min_shared"])
        if res is None:
            result.notes.append(f"{path} shares no subject with {assignments}")
        else:
            result.correlations.append(res)
    result.order = checks.order(assign, table, alpha=opts["corr_alpha"])
    checks.adjust(result.correlations, result.order, opts["corr_alpha"])
    _judge(result)
    return result


def _assignments_file(path: Path, arm_column: str, subject_column: str) -> checks.Assignments:
    """Another experiment's assignments from a file of subject and arm (control: ``control``
    when present, else the first arm in name order)."""
    table = read_table(path, subject_column=subject_column, text_columns=(arm_column,))
    if arm_column not in table.text:
        raise ValidationError(f"{path} has no {arm_column!r} column", field="--against",
                              hint="columns: " + ", ".join([*table.text, *table.numeric]))
    pairs = [(s, a) for s, a in zip(table.subjects, table.text[arm_column], strict=True) if a]
    names = sorted({a for _, a in pairs})
    if len(names) < 2:
        raise ValidationError(f"{path} holds {len(names)} arm(s); a correlation needs two",
                              field="--against")
    return checks.from_pairs(pairs, names, "control" if "control" in names else names[0])
