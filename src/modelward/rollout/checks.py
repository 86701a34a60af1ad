"""Experiment checks: the one implementation behind ``modelward experiment check|audit``, the
guards MW401-MW403 and the API, so they cannot disagree.

* sample ratio mismatch — distinct subjects per arm against the allocation (MW401);
* covariate balance — SMD per covariate of a pre-period population, judged by
  randomisation inference with family-wise (max-T) control (MW402);
* correlated assignment — independence from other experiments' arms over shared subjects,
  and the arm against ID order, the id's last digits or a sign-up time, Holm-adjusted as
  one family (MW403: every test of a run; a command: every test of its experiment).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ledger import experiments as ledger_experiments
from .assignment import Experiment
from .balance import (
    DRAWS,
    Difference,
    Independence,
    OrderTest,
    SampleRatio,
    covariate_balance,
    holm,
    independence_table,
    order_tests,
    sample_ratio,
)
from .exact import exact_independence
from .population import Table


@dataclass
class Assignments:
    """Who is in which arm: one arm per subject (subjects seen in several are set aside)."""

    names: list[str]
    control: str
    subjects: list[str]
    arms: list[str]
    multi_arm: list[str] = field(default_factory=list)

    def index(self) -> np.ndarray:
        pos = {n: i for i, n in enumerate(self.names)}
        return np.array([pos.get(a, -1) for a in self.arms], dtype=np.int64)

    def mapping(self) -> dict[str, str]:
        return dict(zip(self.subjects, self.arms, strict=True))

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.names, 0)
        for a in self.arms:
            out[a] = out.get(a, 0) + 1
        return out


def from_pairs(pairs: list[tuple[str, str]], names: list[str], control: str) -> Assignments:
    arms: dict[str, str] = {}
    multi: set[str] = set()
    for subject, arm in pairs:
        if subject in arms and arms[subject] != arm:
            multi.add(subject)
        arms.setdefault(subject, arm)
    subjects = sorted(s for s in arms if s not in multi)
    extra = sorted({arms[s] for s in subjects} - set(names))
    return Assignments(list(names) + extra, control, subjects, [arms[s] for s in subjects],
                       sorted(multi))


def recorded(conn, exp: Experiment, *, since=None, until=None) -> Assignments:
    """An experiment's assignments as its exposures recorded them."""
    pairs = ledger_experiments.subject_arms(conn, exp.name, since=since, until=until)
    return from_pairs(pairs, list(exp.arm_names), exp.control)


def experiment_of(conn, name: str) -> Experiment:
    rec = ledger_experiments.get(conn, name)
    return Experiment(rec.name, rec.salt, rec.arms, created_at=rec.created_at,
                      balance=rec.balance)


# --- the checks ------------------------------------------------------------------------------

def srm(assign: Assignments, shares: dict[str, float], *, alpha: float = 0.001,
        min_count: int = 100) -> SampleRatio:
    counts = assign.counts()
    result = sample_ratio(counts, shares, alpha=alpha, min_count=min_count)
    unknown = {a: n for a, n in counts.items() if a not in shares and n}
    if unknown:  # an arm the allocation does not have: a mismatch however few
        result.counts.update(unknown)
        result.alarm, result.judged, result.p_value = True, True, 0.0
    return result


def balance(assign: Assignments, table: Table, covariates: list[str] | None, *,
            max_smd: float = 0.1, alpha: float = 0.05,
            draws: int = DRAWS) -> tuple[list[Difference], int]:
    """(differences, subjects of the table found in the assignments): every covariate of
    every treatment arm against control, judged by randomisation inference
    (:func:`~.balance.covariate_balance`)."""
    arms = assign.mapping()
    pos = {n: i for i, n in enumerate(assign.names)}
    index = np.array([pos[arms[s]] if s in arms else -1 for s in table.subjects],
                     dtype=np.int64)
    cols = {c: table.numeric[c] for c in table.covariates(covariates)}
    found = int((index >= 0).sum())
    return covariate_balance(index, assign.names, pos[assign.control], cols, max_smd=max_smd,
                             alpha=alpha, draws=draws), found


def planned(exp: Experiment, table: Table) -> Assignments:
    """The arms the experiment's salt gives a population (before anyone is exposed)."""
    arms = exp.assign_many(table.subjects)
    return Assignments(list(exp.arm_names), exp.control, list(table.subjects), list(arms))


def order(assign: Assignments, table: Table | None = None, *, alpha: float = 0.001,
          time_columns: list[str] | None = None) -> list[OrderTest]:
    """The arm against ID order / last digits, and against the table's time columns."""
    index = assign.index()
    times = {}
    if table is not None:
        wanted = [c for c in (time_columns or sorted(table.times)) if c in table.numeric]
        if wanted:
            row = {s: i for i, s in enumerate(table.subjects)}
            at = np.array([row.get(s, -1) for s in assign.subjects], dtype=np.int64)
            for c in wanted:
                values = np.where(at >= 0, table.numeric[c][np.maximum(at, 0)], np.nan)
                times[c] = values
    pos = {n: i for i, n in enumerate(assign.names)}
    return order_tests(assign.subjects, index, assign.names, pos[assign.control], times=times,
                       alpha=alpha)


def _universe(assigns) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each assignment as (its subjects' positions in one numbering of every subject of
    ``assigns``, their arm indices): the shared subjects of a pair found by array lookup."""
    number: dict[str, int] = {}
    return {name: (np.fromiter((number.setdefault(s, len(number)) for s in a.subjects),
                               dtype=np.int64, count=len(a.subjects)), a.index())
            for name, a in assigns.items()}


def _pair_table(mine: Assignments, theirs: Assignments, codes=None) -> np.ndarray | None:
    """The contingency table of two assignments over their shared subjects (rows: ``mine``'s
    arms), None when they share none."""
    (pa, ia), (pb, ib) = codes or _universe({0: mine, 1: theirs}).values()
    dense = np.full(int(max(pa.max(initial=-1), pb.max(initial=-1))) + 1, -1, dtype=np.int64)
    dense[pb] = ib
    j = dense[pa]
    shared = (j >= 0) & (ia >= 0)
    if not shared.any():
        return None
    na, nb = len(mine.names), len(theirs.names)
    return np.bincount(ia[shared] * nb + j[shared], minlength=na * nb).reshape(na, nb)


def _pair_result(mine: Assignments, other: str, theirs: Assignments, table: np.ndarray, *,
                 alpha: float, min_shared: int, exact=None) -> Independence:
    res = independence_table(other, mine.names, theirs.names, table, control_a=mine.control,
                             control_b=theirs.control, alpha=alpha, exact=exact)
    if res.shared < min_shared:
        res.judged = res.alarm = False
    return res


def pair_test(mine: Assignments, other: str, theirs: Assignments, *, alpha: float = 0.001,
              min_shared: int = 100, codes=None) -> Independence | None:
    """Independence of two assignments over their shared subjects, by an exact test
    (:func:`~.exact.exact_independence`; None: none shared; fewer than ``min_shared``:
    not judged). ``codes``: the two assignments as :func:`_universe` numbers them, when the
    caller already has them."""
    table = _pair_table(mine, theirs, codes)
    if table is None:
        return None
    return _pair_result(mine, other, theirs, table, alpha=alpha, min_shared=min_shared)


def correlations(conn, assign: Assignments, name: str | None, *, since=None, until=None,
                 alpha: float = 0.001, min_shared: int = 100) -> list[Independence]:
    """Independence from every other recorded experiment sharing at least ``min_shared``
    subjects (fewer: not judged, still listed when any are shared)."""
    out = []
    for other in ledger_experiments.exposed_experiments(conn, since=since, until=until):
        if other == name:
            continue
        exp = experiment_of(conn, other)
        res = pair_test(assign, other, recorded(conn, exp, since=since, until=until),
                        alpha=alpha, min_shared=min_shared)
        if res is not None:
            out.append(res)
    return out


def adjust(pairs: list[Independence], order: list[OrderTest], alpha: float) -> int:
    """Holm over every test made — the judged pairs of experiments and the ID-order tests —
    as one family: sets each test's ``p_adjusted`` and ``alarm``/``flagged``. Returns the
    number of tests."""
    judged = [r for r in pairs if r.judged and r.p_value is not None]
    made = [t for t in order if t.p_value is not None]
    adjusted = holm([r.p_value for r in judged] + [t.p_value for t in made])
    for r in pairs:
        r.p_adjusted, r.alarm = None, False
    for r, p in zip(judged, adjusted, strict=False):
        r.p_adjusted, r.alarm = p, p < alpha
    for t, p in zip(made, adjusted[len(judged):], strict=True):
        t.p_adjusted, t.flagged = p, p < alpha
    return len(adjusted)


@dataclass
class Family:
    """Every test MW403 makes in one run: each pair of experiments once (``pairs``: the
    judged experiment that raised it, and the result), each judged experiment's ID-order
    tests; Holm-adjusted together over ``tests``."""

    pairs: list[tuple[str, Independence]]
    order: dict[str, list[OrderTest]]
    tests: int


def correlated_assignment(assigns: dict[str, Assignments], judged: list[str],
                          tables: dict[str, Table | None] | None = None, *,
                          alpha: float = 0.001, min_shared: int = 100) -> Family:
    """MW403's decision over one run: every judged experiment against every other in
    ``assigns`` (each pair once) and against ID order and its table's time columns, all
    tests Holm-adjusted as one family, so the chance that a run with no correlated
    assignment reports any is at most ``alpha``."""
    codes = _universe(assigns)
    found: list[tuple[str, str, np.ndarray]] = []
    done: set[frozenset] = set()
    for name in judged:
        for other in sorted(assigns):
            key = frozenset((name, other))
            if other == name or key in done:
                continue
            done.add(key)
            table = _pair_table(assigns[name], assigns[other], (codes[name], codes[other]))
            if table is not None:
                found.append((name, other, table))
    # every pair's exact test in one vectorised pass (those below min_shared: not judged)
    exact = exact_independence([t for _, _, t in found])
    pairs = [(name, _pair_result(assigns[name], other, assigns[other], table, alpha=alpha,
                                 min_shared=min_shared, exact=e))
             for (name, other, table), e in zip(found, exact, strict=True)]
    tables = tables or {}
    order_of = {name: order(assigns[name], tables.get(name), alpha=alpha) for name in judged}
    tests = adjust([r for _, r in pairs], [t for ts in order_of.values() for t in ts], alpha)
    return Family(pairs, order_of, tests)


def mismatched(exp: Experiment, assign: Assignments) -> int:
    """Subjects whose recorded arm is not the one the salt gives them."""
    if not assign.subjects:
        return 0
    expected = exp.assign_many(assign.subjects)
    return int(sum(1 for a, b in zip(assign.arms, expected, strict=True) if a != b))


def judged(conn, wanted: list[str] | None, *, since=None, until=None,
           option: str = "experiments") -> list[Experiment]:
    """The experiments a guard judges: those named in ``wanted`` (each must exist), else
    every experiment with exposures in the window."""
    from ..errors import ConfigError, NotFoundError

    names = wanted or ledger_experiments.exposed_experiments(conn, since=since, until=until)
    out = []
    for name in names:
        try:
            out.append(experiment_of(conn, name))
        except NotFoundError:
            if wanted:
                raise ConfigError(f"{option}: no experiment {name!r} in the ledger") from None
    return out


def share_text(exp: Experiment) -> str:
    """``95/5`` for the allocation of a two-arm experiment (arms in order)."""
    return "/".join(f"{100 * s:.4g}" for s in exp.shares.values())
