"""The statistics of experiment checks: sample ratio mismatch, standardized mean differences
judged by randomisation inference, independence of two assignments, and arm against ID
order.

Every function takes arms as an integer index per subject (``-1``: not in the experiment)
plus the arm names and the control's index, and returns plain dataclasses that the CLI,
the guards and the API all print from. Distributions come from scipy.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from .exact import exact_independence


def _clean(x):
    """A float for JSON: None for NaN, a string for ±inf."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# --- sample ratio mismatch ------------------------------------------------------------------

@dataclass
class SampleRatio:
    counts: dict[str, int]
    expected: dict[str, float]
    chi2: float | None
    dof: int
    p_value: float | None
    judged: bool  # every arm expects at least min_count subjects
    alarm: bool
    alpha: float
    min_count: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["chi2"], out["p_value"] = _clean(self.chi2), _clean(self.p_value)
        return out


def sample_ratio(counts: dict[str, int], shares: dict[str, float], *, alpha: float = 0.001,
                 min_count: int = 100) -> SampleRatio:
    """Pearson's chi-square of arm counts against the allocation; an alarm at p < alpha once
    every arm expects at least ``min_count`` subjects."""
    names = list(shares)
    observed = np.array([counts.get(n, 0) for n in names], dtype=np.float64)
    total = observed.sum()
    expected = np.array([shares[n] for n in names]) * total
    if total == 0:
        return SampleRatio({n: 0 for n in names}, dict.fromkeys(names, 0.0), None, 0, None,
                           False, False, alpha, min_count)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    dof = len(names) - 1
    from scipy import stats

    p = float(stats.chi2.sf(chi2, dof))
    judged = bool(expected.min() >= min_count)
    return SampleRatio({n: int(c) for n, c in zip(names, observed, strict=True)},
                       {n: round(float(e), 3) for n, e in zip(names, expected, strict=True)},
                       chi2, dof, p, judged, judged and p < alpha, alpha, min_count)


# --- covariate balance --------------------------------------------------------------------

DRAWS = 1000  # re-randomisations behind a balance p-value (resolution 1/1001)


@dataclass
class Difference:
    """One covariate, one treatment arm against control."""

    covariate: str
    arm: str
    control: str
    n_arm: int
    n_control: int
    mean_arm: float | None
    mean_control: float | None
    smd: float | None
    z: float | None = None  # the SMD scaled by sqrt(n_arm n_control / (n_arm + n_control))
    p_value: float | None = None  # randomisation p of this test alone
    p_adjusted: float | None = None  # family-wise: max-T over every covariate x arm test
    flagged: bool = False

    def to_dict(self) -> dict:
        return {k: _clean(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def smd(mean_a, var_a, mean_c, var_c):
    """Standardized mean difference (a - c) / sqrt((var_a + var_c) / 2); arrays work too."""
    pooled = np.sqrt((np.asarray(var_a) + np.asarray(var_c)) / 2.0)
    diff = np.asarray(mean_a) - np.asarray(mean_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = diff / pooled
        return np.where(pooled > 0, d, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))


def welch(mean_a, var_a, n_a, mean_c, var_c, n_c) -> tuple[float | None, float | None,
                                                            float | None]:
    """Welch's unequal-variance t-test from summary statistics: (t, df, two-sided p)."""
    if n_a < 2 or n_c < 2:
        return None, None, None
    se2 = var_a / n_a + var_c / n_c
    diff = mean_a - mean_c
    if se2 <= 0:
        return (None, None, None) if diff == 0 else (math.copysign(math.inf, diff), None, 0.0)
    t = diff / math.sqrt(se2)
    df = se2 ** 2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_c / n_c) ** 2 / (n_c - 1))
    from scipy import stats

    return t, df, float(2 * stats.t.sf(abs(t), df))


def _moment_matrix(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Per subject: each covariate (centred, 0 where missing), its square, and 1 where
    present; one matrix product with an arm's indicator gives the arm's moments."""
    c = len(columns)
    matrix = np.zeros((len(next(iter(columns.values()))), 3 * c), dtype=np.float64)
    for i, values in enumerate(columns.values()):
        ok = ~np.isnan(values)
        x = np.where(ok, values - (values[ok].mean() if ok.any() else 0.0), 0.0)
        matrix[:, i], matrix[:, c + i], matrix[:, 2 * c + i] = x, x * x, ok
    return matrix


def _standardised(sums_a: np.ndarray, sums_c: np.ndarray, c: int):
    """(mean_a, mean_c, smd, z, n_a, n_c) per covariate from an arm's and control's moment
    sums (the last axis: 3c); z is 0 where an arm has fewer than two values."""
    def moments(s):
        s1, s2, n = s[..., :c], s[..., c:2 * c], s[..., 2 * c:]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s1 / n
            var = np.maximum((s2 - s1 * mean) / (n - 1), 0.0)
        return mean, var, n

    ma, va, na = moments(sums_a)
    mc, vc, nc = moments(sums_c)
    d = smd(ma, va, mc, vc)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = d * np.sqrt(na * nc / (na + nc))
    z = np.where((na < 2) | (nc < 2) | np.isnan(z), 0.0, z)
    return ma, mc, d, z, na, nc


def covariate_balance(arm_index: np.ndarray, names: list[str], control: int,
                      columns: dict[str, np.ndarray], *, max_smd: float = 0.1,
                      alpha: float = 0.05, draws: int = DRAWS, seed: int = 0
                      ) -> list[Difference]:
    """SMD of every covariate for every treatment arm against control, judged by
    randomisation inference under the assignment mechanism.

    A salted assignment draws each subject's arm independently of everything about the
    subject, so given the arms' sizes every relabelling of the subjects is equally likely.
    The arm labels are re-drawn ``draws`` times (permuted, a seeded generator: the same
    data always give the same answer); each draw's statistic is the largest |z| over every
    covariate x treatment arm, z = SMD x sqrt(n_arm n_control / (n_arm + n_control)) (the
    SMD on the scale of its sampling error, so a small arm does not drown a large one).
    A test's family-wise p-value is the share of draws whose largest |z| reaches its |z|
    (max-T, counting the observed labelling as one draw): the chance, if the salt alone
    chose the arms, that any covariate of any arm would look this unbalanced. It needs no
    normal approximation, so a rare 0/1 covariate, a heavy tail or a small arm is judged by
    its own null distribution. A difference is flagged when |SMD| >= ``max_smd`` and the
    family-wise p-value is below ``alpha``. ``draws=0``: SMDs only, no p-values."""
    keep = arm_index >= 0
    labels = arm_index[keep].astype(np.int64)
    columns = {k: np.asarray(v, dtype=np.float64)[keep] for k, v in columns.items()}
    treated = [j for j in range(len(names)) if j != control]
    if not columns or not treated:
        return []
    c = len(columns)
    matrix = _moment_matrix(columns)

    def stats_of(lab: np.ndarray):
        """Per treatment arm: _standardised over draws (lab: draws x subjects)."""
        sums_c = (lab == control).astype(np.float64) @ matrix
        return [_standardised((lab == j).astype(np.float64) @ matrix, sums_c, c)
                for j in treated]

    observed = stats_of(labels[None, :])
    out: list[Difference] = []
    obs_z = np.zeros((len(treated), c))
    for t, j in enumerate(treated):
        ma, mc, d, z, na, nc = (x[0] for x in observed[t])
        obs_z[t] = np.abs(z)
        for i, cov in enumerate(columns):
            judged = na[i] >= 2 and nc[i] >= 2
            out.append(Difference(
                cov, names[j], names[control], int(na[i]), int(nc[i]),
                float(ma[i]) + _centre(columns[cov]) if na[i] else None,
                float(mc[i]) + _centre(columns[cov]) if nc[i] else None,
                float(d[i]) if judged else None, float(z[i]) if judged else None))
    if draws <= 0:
        return out
    rng = np.random.default_rng(seed)
    n = len(labels)
    chunk = max(1, min(draws, 2_000_000 // max(n, 1)))
    reach = np.zeros(obs_z.shape, dtype=np.int64)  # draws whose max |z| >= this |z|
    alone = np.zeros(obs_z.shape, dtype=np.int64)  # draws whose own |z| >= this |z|
    tol = 1e-9 * np.maximum(obs_z, 1.0)  # a relabelling equal to the observed one ties
    done = 0
    while done < draws:
        k = min(chunk, draws - done)
        lab = rng.permuted(np.broadcast_to(labels, (k, n)), axis=1)
        zs = np.stack([np.abs(s[3]) for s in stats_of(lab)], axis=1)  # k x arms x c
        top = zs.reshape(k, -1).max(axis=1)
        reach += (top[:, None, None] >= obs_z[None] - tol).sum(axis=0)
        alone += (zs >= obs_z[None] - tol).sum(axis=0)
        done += k
    p_adj, p_one = (reach + 1) / (draws + 1), (alone + 1) / (draws + 1)
    for t in range(len(treated)):
        for i in range(c):
            diff = out[t * c + i]
            if diff.smd is None:
                continue
            diff.p_value, diff.p_adjusted = float(p_one[t, i]), float(p_adj[t, i])
            diff.flagged = bool(abs(diff.smd) >= max_smd and diff.p_adjusted < alpha)
    return out


def _centre(values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else 0.0


# --- two assignments over shared subjects ------------------------------------------------------

@dataclass
class Overlap:
    arm: str
    other_arm: str
    observed: int
    expected: float
    ratio: float | None


@dataclass
class Independence:
    other: str
    shared: int
    table: dict[str, dict[str, int]]
    chi2: float | None  # Pearson's statistic, descriptive: the p-value is exact
    dof: int
    p_value: float | None
    judged: bool  # two arms or more on each side (and, in a pair test, min_shared subjects)
    alarm: bool
    overlaps: list[Overlap]
    p_adjusted: float | None = None  # Holm, over the family of tests it was judged in
    cells: int = 0  # 2x2 tables behind the p-value (1: Fisher's test of a 2x2 table)

    @property
    def method(self) -> str:
        """The test behind ``p_value``, in words."""
        if self.cells <= 1:
            return "Fisher's exact test"
        return f"Fisher's exact test of each of {self.cells} arm-against-arm tables, Bonferroni"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["method"] = self.method
        out["chi2"], out["p_value"] = _clean(self.chi2), _clean(self.p_value)
        out["p_adjusted"] = _clean(self.p_adjusted)
        for o in out["overlaps"]:
            o["ratio"] = _clean(o["ratio"])
        return out


def independence(other: str, arms_a: list[str], arms_b: list[str], pairs: list[tuple[str, str]],
                 *, control_a: str, control_b: str, alpha: float = 0.001) -> Independence:
    """Exact test that two experiments' arms are independent over shared subjects
    (:func:`.exact.exact_independence`), and observed/expected overlap of every pair of treatment
    arms."""
    rows = {a: i for i, a in enumerate(arms_a)}
    cols = {b: i for i, b in enumerate(arms_b)}
    table = np.zeros((len(arms_a), len(arms_b)), dtype=np.int64)
    for a, b in pairs:
        if a in rows and b in cols:
            table[rows[a], cols[b]] += 1
    return independence_table(other, arms_a, arms_b, table, control_a=control_a,
                              control_b=control_b, alpha=alpha)


def pearson(table: np.ndarray) -> tuple[float, float, int, float]:
    """Pearson's chi-square test of independence of a contingency table with no empty row
    or column (no continuity correction; ``scipy.stats.chi2_contingency`` without its
    per-call overhead, which dominated a run over hundreds of experiment pairs): (statistic,
    p-value, degrees of freedom, smallest expected count)."""
    t = np.asarray(table, dtype=np.float64)
    expected = np.outer(t.sum(1), t.sum(0)) / t.sum()
    chi2 = float(((t - expected) ** 2 / expected).sum())
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    from scipy import special

    return chi2, float(special.chdtrc(dof, chi2)), dof, float(expected.min())


def independence_table(other: str, arms_a: list[str], arms_b: list[str], table: np.ndarray,
                       *, control_a: str, control_b: str, alpha: float = 0.001,
                       exact: tuple[float | None, int] | None = None) -> Independence:
    """:func:`independence` from the arms' contingency table (rows: ``arms_a``). ``exact``:
    the table's (p-value, 2x2 tables) from :func:`.exact.exact_independence`, when the caller
    computed a run's tables together."""
    rows = {a: i for i, a in enumerate(arms_a)}
    cols = {b: i for i, b in enumerate(arms_b)}
    n = int(table.sum())
    r, c = table.sum(1), table.sum(0)
    expected = np.outer(r, c) / n if n else np.zeros(table.shape)
    overlaps = [Overlap(a, b, int(table[rows[a], cols[b]]), round(float(expected[rows[a], cols[b]]), 3),
                        float(table[rows[a], cols[b]] / expected[rows[a], cols[b]])
                        if expected[rows[a], cols[b]] > 0 else None)
                for a in arms_a if a != control_a for b in arms_b if b != control_b]
    keep_r, keep_c = r > 0, c > 0
    chi2 = p = None
    dof = cells = 0
    if keep_r.sum() >= 2 and keep_c.sum() >= 2:
        chi2, _, dof, _ = pearson(table[np.ix_(keep_r, keep_c)])
        p, cells = exact if exact is not None else exact_independence([table])[0]
    judged = p is not None
    return Independence(other, n, {a: {b: int(table[rows[a], cols[b]]) for b in arms_b}
                                   for a in arms_a},
                        chi2, dof, p, judged, judged and p < alpha, overlaps, cells=cells)


# --- arm against ID order and sign-up time --------------------------------------------------------

_NUMERIC_ID = re.compile(r"^\D*?(\d{1,18})$")


def numeric_ids(subjects: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the trailing number of each subject id as an exact int64 — ``u-1042`` -> 1042, up to
    18 digits —, a mask of the ids that end in one). Never through float64: an 18-digit id
    has more digits than a double holds, and its last digits are what bucketing reads."""
    out = np.zeros(len(subjects), dtype=np.int64)
    ok = np.zeros(len(subjects), dtype=bool)
    for i, s in enumerate(subjects):
        m = _NUMERIC_ID.match(s)
        if m:
            out[i], ok[i] = int(m.group(1)), True
    return out, ok


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: family-wise error control under any dependence between
    the tests, uniformly more powerful than Bonferroni."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


@dataclass
class OrderTest:
    """One test of the ID-order family."""

    test: str  # "id-rank", "id-mod-10", "id-mod-100", "<column>-rank"
    arm: str | None  # rank tests: the treatment arm against control
    statistic: float | None
    p_value: float | None
    effect: float | None  # rank tests: rank-biserial correlation; residue tests: Cramér's V
    n: int
    p_adjusted: float | None = None
    flagged: bool = False
    note: str | None = None

    def to_dict(self) -> dict:
        return {k: _clean(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _rank_tests(label: str, values: np.ndarray, arm_index: np.ndarray, names: list[str],
                control: int, ok: np.ndarray | None = None) -> list[OrderTest]:
    from scipy import stats

    ok = ~np.isnan(values) if ok is None else ok
    out = []
    for j, arm in enumerate(names):
        if j == control:
            continue
        a = values[(arm_index == j) & ok]
        c = values[(arm_index == control) & ok]
        if len(a) < 20 or len(c) < 20:
            out.append(OrderTest(label, arm, None, None, None, len(a) + len(c),
                                 note="fewer than 20 subjects in an arm"))
            continue
        # ranked here, exactly: scipy casts its input to float64, and an 18-digit id has
        # more digits than a double holds. The normal approximation overstates the
        # p-value in the tail (the rank sum's tails are lighter than the normal's: checked
        # against the exact distribution down to 1e-40), so the test keeps its level.
        ranks = stats.rankdata(np.concatenate([a, c]))
        res = stats.mannwhitneyu(ranks[:len(a)], ranks[len(a):], alternative="two-sided",
                                 method="asymptotic")
        auc = float(res.statistic) / (len(a) * len(c))
        out.append(OrderTest(label, arm, float(res.statistic), float(res.pvalue),
                             2 * auc - 1, len(a) + len(c)))
    return out


def _residue_test(modulus: int, ids: np.ndarray, ok: np.ndarray, arm_index: np.ndarray,
                  n_arms: int) -> OrderTest:
    keep = ok & (arm_index >= 0)
    residue = ids[keep] % modulus  # exact: int64 ids
    table = np.zeros((n_arms, modulus), dtype=np.int64)
    np.add.at(table, (arm_index[keep].astype(np.int64), residue), 1)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    label, n = f"id-mod-{modulus}", int(keep.sum())
    if table.shape[0] < 2 or table.shape[1] < 2:
        return OrderTest(label, None, None, None, None, n, note="one arm or one residue")
    chi2 = pearson(table)[0]  # for Cramér's V; the p-value is exact
    p, _cells = exact_independence([table])[0]
    v = math.sqrt(chi2 / (n * (min(table.shape) - 1)))
    return OrderTest(label, None, chi2, p, v, n)


def order_tests(subjects: list[str], arm_index: np.ndarray, names: list[str], control: int, *,
                times: dict[str, np.ndarray] | None = None, alpha: float = 0.001,
                min_numeric_share: float = 0.9) -> list[OrderTest]:
    """Is the arm predictable from the subject id or a sign-up time?

    * ``id-rank``: Mann-Whitney U of the ids' numeric part, each treatment arm against
      control (assignment by ID range, or ids that follow sign-up order);
    * ``id-mod-10`` / ``id-mod-100``: arm against the id's last digit(s) (``id % 100 < 5``
      style bucketing), by :func:`exact_independence` (valid however few subjects a
      residue holds);
    * ``<column>-rank``: Mann-Whitney U of each time column (e.g. ``signup_at``).

    Ids are judged when at least ``min_numeric_share`` of subjects end in a number; they are
    read as exact integers. p-values are Holm-adjusted over the tests made; flagged below
    ``alpha``."""
    tests: list[OrderTest] = []
    ids, ok = numeric_ids(subjects)
    if subjects and int(ok.sum()) >= min_numeric_share * len(subjects):
        tests += _rank_tests("id-rank", ids, arm_index, names, control, ok)
        tests += [_residue_test(m, ids, ok, arm_index, len(names)) for m in (10, 100)]
    for column, values in (times or {}).items():
        tests += _rank_tests(f"{column}-rank", values, arm_index, names, control)
    made = [t for t in tests if t.p_value is not None]
    for t, p in zip(made, holm([t.p_value for t in made]), strict=True):
        t.p_adjusted = p
        t.flagged = p < alpha
    return tests
