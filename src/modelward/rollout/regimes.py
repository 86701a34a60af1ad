"""Substrate regimes: split an experiment's exposures by the substrate they ran on.

A regime is one combination of model digest, embedder digest, observed embedder fingerprint
epoch and vendor-reported model id. The epoch is the exposure's own ``fingerprint_epoch``
when recorded, else that of the latest fingerprint of its embedder digest taken at or
before the exposure (before the first fingerprint: the first one's epoch, since no change
had been observed yet).

A dimension that *is* the treatment — each value seen in one arm only, as when the arms
are two models — does not split regimes by its value; it counts by generation instead (the
first value an arm ran on, the second, …), so a model A/B test is one regime until one
arm's model changes under it.

For each treatment arm against control the report gives the metric per regime, and a
treatment-by-regime interaction test: Cochran's Q over the per-regime effects, referred to
Welch's F(R - 1, nu2) (the small-sample correction for estimated weights; chi-square
ignores it and is liberal at moderate sizes), and I². The subject is the unit: a subject's exposures in a
regime are averaged first, and a regime's effect is the difference of the arms' means of
subject means, with Welch standard errors over subjects. A subject's repeated exposures are
correlated (the same user, the same habits); counted as independent they made Q reject a
true null in 40% of experiments at p < 0.05. Each regime's effect carries its 95% interval,
effect ± t(0.975, Welch–Satterthwaite df) × se, over the same subjects and standard error
(:func:`interval`): what the CLI prints and the dashboard draws.

The metric is the exposures' ``metric``; its name is the one the experiment was created
with (``modelward experiment create --metric NAME``), else ``metric``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from ..ledger import experiments as ledger_experiments
from ..timefmt import iso

DIMENSIONS = ("model_digest", "embedder_digest", "fingerprint_epoch", "vendor_model_id")


@dataclass
class ArmMetric:
    exposures: int
    subjects: int
    n: int  # exposures with a metric
    mean: float | None
    sd: float | None
    measured: int = 0  # subjects with a metric
    subject_mean: float | None = None  # mean of the subjects' mean metric
    subject_sd: float | None = None  # sd of the subjects' mean metric


@dataclass
class Regime:
    label: str
    key: dict[str, object]
    first_at: int
    last_at: int
    exposures: int
    arms: dict[str, ArmMetric]

    def to_dict(self) -> dict:
        return {"label": self.label, "substrate": self.key, "first_at": iso(self.first_at),
                "last_at": iso(self.last_at), "exposures": self.exposures,
                "arms": {a: m.__dict__ for a, m in self.arms.items()}}


@dataclass
class Interaction:
    arm: str
    control: str
    effects: dict[str, dict]  # regime label -> {effect, se}
    q: float | None
    dof: int
    p_value: float | None
    i2: float | None
    note: str | None = None
    f: float | None = None  # Welch's F: Q / (R - 1) with the small-sample correction
    dof2: float | None = None  # its denominator degrees of freedom


@dataclass
class RegimeReport:
    experiment: str
    exposures: int
    varying: list[str]  # dimensions that take more than one value (or generation)
    treatment_dims: list[str]  # dimensions that differ by arm by design
    regimes: list[Regime] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    metric: str = "metric"  # what the exposures' metric measures (named at creation)

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "metric": self.metric,
                "exposures": self.exposures,
                "varying": self.varying, "treatment_dimensions": self.treatment_dims,
                "regimes": [r.to_dict() for r in self.regimes],
                "interactions": [i.__dict__ for i in self.interactions]}


def observed_epoch(epochs: list[tuple[int, int]], at: int) -> int | None:
    """The fingerprint epoch in force at ``at`` from an embedder's (at, epoch) history."""
    if not epochs:
        return None
    i = bisect_right([a for a, _ in epochs], at)
    return epochs[max(i - 1, 0)][1]


def _substrate(rows, epochs: dict[str, list[tuple[int, int]]]) -> list[dict]:
    out = []
    for r in rows:
        epoch = r.fingerprint_epoch
        if epoch is None and r.embedder_digest:
            epoch = observed_epoch(epochs.get(r.embedder_digest, []), r.at)
        out.append({"model_digest": r.model_digest, "embedder_digest": r.embedder_digest,
                    "fingerprint_epoch": epoch, "vendor_model_id": r.vendor_model_id})
    return out


def _arm_metric(rows) -> ArmMetric:
    values = np.array([r.metric for r in rows if r.metric is not None], dtype=np.float64)
    n = len(values)
    per: dict[str, list[float]] = {}
    for r in rows:
        if r.metric is not None:
            per.setdefault(r.subject, []).append(r.metric)
    means = np.array([math.fsum(v) / len(v) for v in per.values()], dtype=np.float64)
    g = len(means)
    return ArmMetric(len(rows), len({r.subject for r in rows}), n,
                     float(values.mean()) if n else None,
                     float(values.std(ddof=1)) if n > 1 else None,
                     g, float(means.mean()) if g else None,
                     float(means.std(ddof=1)) if g > 1 else None)


def split(experiment: str, rows, epochs: dict[str, list[tuple[int, int]]], arms: list[str],
          control: str) -> RegimeReport:
    """The regimes of ``rows`` (an experiment's exposures in time order)."""
    subs = _substrate(rows, epochs)
    treatment_dims, varying = [], []
    coords: dict[str, list] = {}
    for dim in DIMENSIONS:
        values = [s[dim] for s in subs]
        per_arm: dict[str, list] = {}
        for r, v in zip(rows, values, strict=True):
            seen = per_arm.setdefault(r.arm, [])
            if v not in seen:
                seen.append(v)
        owners: dict = {}
        for arm, vs in per_arm.items():
            for v in vs:
                owners.setdefault(v, set()).add(arm)
        if len(per_arm) >= 2 and len(owners) >= 2 and all(len(o) == 1 for o in owners.values()):
            treatment_dims.append(dim)
            coords[dim] = [per_arm[r.arm].index(v) for r, v in zip(rows, values, strict=True)]
        else:
            coords[dim] = values
        if len(set(coords[dim])) > 1:
            varying.append(dim)
    report = RegimeReport(experiment, len(rows), varying, treatment_dims)
    groups: dict[tuple, list[int]] = {}
    for i in range(len(rows)):
        groups.setdefault(tuple(coords[d][i] for d in DIMENSIONS), []).append(i)
    ordered = sorted(groups.items(), key=lambda kv: (rows[kv[1][0]].at, kv[1][0]))
    for n, (_key, idx) in enumerate(ordered, start=1):
        mine = [rows[i] for i in idx]
        key = {}
        for d in DIMENSIONS:
            vals = sorted({subs[i][d] for i in idx}, key=lambda v: (v is None, str(v)))
            key[d] = vals[0] if len(vals) == 1 else vals  # a treatment dim: one value per arm
        report.regimes.append(Regime(
            f"R{n}", key, mine[0].at, mine[-1].at, len(mine),
            {a: _arm_metric([r for r in mine if r.arm == a]) for a in arms
             if any(r.arm == a for r in mine)}))
    report.interactions = [interaction(report.regimes, a, control) for a in arms if a != control]
    return report


LEVEL = 0.95  # the confidence level of each regime's effect interval


def interval(effect: float, a: ArmMetric, c: ArmMetric,
             level: float = LEVEL) -> tuple[float, float, float | None]:
    """(low, high, df): the ``level`` interval of a regime's effect (difference of the arms'
    means of subject means), Welch's t over subjects with Welch–Satterthwaite degrees of
    freedom; a zero standard error gives the point itself (df None)."""
    va, vc = a.subject_sd ** 2 / a.measured, c.subject_sd ** 2 / c.measured
    se2 = va + vc
    if se2 <= 0:
        return effect, effect, None
    df = se2 ** 2 / (va ** 2 / (a.measured - 1) + vc ** 2 / (c.measured - 1))
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    return effect - half, effect + half, df


def _satterthwaite(va: float, na: int, vc: float, nc: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two means."""
    a, c = va / na, vc / nc
    den = a * a / (na - 1) + c * c / (nc - 1)
    return (a + c) ** 2 / den if den > 0 else math.inf


def heterogeneity(effects, ses, dfs) -> tuple[float, float, float, float]:
    """Welch's test that R effects (each with its standard error, estimated on ``dfs``
    degrees of freedom) are equal: Cochran's Q with estimated weights, referred to
    F(R - 1, nu2) with Welch's (1951) small-sample correction instead of chi-square, which
    ignores that the weights are estimated and is liberal at moderate sizes.

    Returns (Q, F, nu2, p). Vectorised: each argument is (R,) or (..., R)."""
    d = np.asarray(effects, dtype=np.float64)
    w = 1.0 / np.asarray(ses, dtype=np.float64) ** 2
    nu = np.asarray(dfs, dtype=np.float64)
    k = d.shape[-1]
    sw = w.sum(axis=-1, keepdims=True)
    pooled = (w * d).sum(axis=-1, keepdims=True) / sw
    q = (w * (d - pooled) ** 2).sum(axis=-1)
    lam = ((1.0 - w / sw) ** 2 / nu).sum(axis=-1)
    f = q / (k - 1) / (1.0 + 2.0 * (k - 2) * lam / (k * k - 1))
    nu2 = np.where(lam > 0, (k * k - 1) / (3.0 * np.maximum(lam, 1e-300)), np.inf)
    from scipy import stats

    p = np.where(np.isfinite(nu2), stats.f.sf(f, k - 1, np.minimum(nu2, 1e12)),
                 stats.chi2.sf(q, k - 1))
    return q, f, nu2, p


def interaction(regimes: list[Regime], arm: str, control: str) -> Interaction:
    """The treatment-by-regime interaction test of ``arm`` against ``control`` over the
    regimes' subject-level metrics (the test MW404 reports)."""
    effects: dict[str, dict] = {}
    for reg in regimes:
        a, c = reg.arms.get(arm), reg.arms.get(control)
        if not a or not c or a.measured < 2 or c.measured < 2:
            continue
        va, vc = a.subject_sd ** 2, c.subject_sd ** 2
        se = math.sqrt(va / a.measured + vc / c.measured)
        effect = a.subject_mean - c.subject_mean
        low, high, _df = interval(effect, a, c)
        effects[reg.label] = {"effect": effect, "se": se, "low": low, "high": high,
                              "level": LEVEL,
                              "df": _satterthwaite(va, a.measured, vc, c.measured),
                              "n_arm": a.n, "n_control": c.n,
                              "subjects_arm": a.measured, "subjects_control": c.measured}
    usable = {k: e for k, e in effects.items() if e["se"] > 0}
    if len(usable) < 2:
        return Interaction(arm, control, effects, None, 0, None, None,
                           note="fewer than two regimes with a metric for two subjects in "
                                "both arms")
    q, f, nu2, p = heterogeneity([e["effect"] for e in usable.values()],
                                 [e["se"] for e in usable.values()],
                                 [e["df"] for e in usable.values()])
    dof = len(usable) - 1
    q = float(q)
    return Interaction(arm, control, effects, q, dof, float(p),
                       max(0.0, (q - dof) / q) if q > 0 else 0.0,
                       f=float(f), dof2=float(nu2))


ALPHA = 0.05  # MW404 says an arm's effect differs by regime below this p-value


def differing(report: RegimeReport, alpha: float = ALPHA) -> list[Interaction]:
    """The arms whose effect differs by regime: an interaction test below ``alpha`` (the
    claim MW404 makes, and the one its calibration measures)."""
    return [i for i in report.interactions if i.p_value is not None and i.p_value < alpha]


def regime_report(conn, exp, *, since=None, until=None) -> RegimeReport:
    """The regimes of experiment ``exp`` over its exposures in ``[since, until)``: the one
    report behind MW404, ``modelward experiment regimes``, the API and the dashboard."""
    rows = ledger_experiments.read_exposures(conn, exp.name, since=since, until=until)
    epochs = ledger_experiments.fingerprint_epochs(conn, {r.embedder_digest for r in rows})
    found = split(exp.name, rows, epochs, list(exp.arm_names), exp.control)
    found.metric = metric_name(ledger_experiments.get(conn, exp.name).meta)
    return found


def metric_name(meta: dict | None) -> str:
    """The name the experiment's metric was created with, else ``metric``."""
    name = (meta or {}).get("metric")
    return name if isinstance(name, str) and name else "metric"
