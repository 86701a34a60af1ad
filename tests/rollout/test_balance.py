"""The statistics of the checks against scipy's reference functions and hand-worked cases,
and the balanced salt search against a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelward.errors import ValidationError
from modelward.rollout import balance, exact, search
from modelward.rollout.assignment import Experiment
from modelward.rollout.population import parse_table

from .world import canary_arm, canary_population


def test_sample_ratio_is_pearsons_chi_square_and_waits_for_min_count():
    res = balance.sample_ratio({"control": 9620, "treatment": 380},
                               {"control": 0.95, "treatment": 0.05})
    ref = stats.chisquare([9620, 380], [9500, 500])
    assert res.chi2 == pytest.approx(ref.statistic) and res.chi2 == pytest.approx(30.3158, abs=1e-4)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (res.judged, res.alarm, res.dof) == (True, True, 1)
    assert res.expected == {"control": 9500.0, "treatment": 500.0}
    small = balance.sample_ratio({"control": 1900, "treatment": 40},
                                 {"control": 0.95, "treatment": 0.05})
    assert small.p_value < 0.001 and (small.judged, small.alarm) == (False, False)  # 97 < 100
    fine = balance.sample_ratio({"control": 9520, "treatment": 480},
                                {"control": 0.95, "treatment": 0.05})
    assert fine.p_value > 0.3 and not fine.alarm
    empty = balance.sample_ratio({}, {"a": 0.5, "b": 0.5})
    assert (empty.chi2, empty.p_value, empty.alarm) == (None, None, False)


def test_welch_and_smd_agree_with_scipy():
    rng = np.random.default_rng(3)
    a, c = rng.normal(1.2, 2.0, 400), rng.normal(1.0, 1.0, 5000)
    t, df, p = balance.welch(a.mean(), a.var(ddof=1), len(a), c.mean(), c.var(ddof=1), len(c))
    ref = stats.ttest_ind(a, c, equal_var=False)
    assert (t, p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert df == pytest.approx(ref.df)
    d = balance.smd(a.mean(), a.var(ddof=1), c.mean(), c.var(ddof=1))
    assert float(d) == pytest.approx((a.mean() - c.mean()) /
                                     math.sqrt((a.var(ddof=1) + c.var(ddof=1)) / 2))
    assert float(balance.smd(1.0, 0.0, 1.0, 0.0)) == 0.0
    assert float(balance.smd(2.0, 0.0, 1.0, 0.0)) == math.inf
    assert balance.welch(1.0, 0.0, 5, 1.0, 0.0, 5) == (None, None, None)


def _exact(rng, n, mean, sd=1.0):
    """A sample with exactly this mean and standard deviation (ddof=1)."""
    x = rng.normal(0, 1, n)
    return (x - x.mean()) / x.std(ddof=1) * sd + mean


def test_covariate_balance_flags_large_and_significant_differences_only():
    rng = np.random.default_rng(4)
    arm = np.array([0] * 5700 + [1] * 300)
    heavy = np.concatenate([_exact(rng, 5700, 10, 4), _exact(rng, 300, 13, 4)])  # SMD 0.75
    tiny = np.concatenate([_exact(rng, 5700, 0), _exact(rng, 300, 0.05)])  # SMD 0.05
    out = balance.covariate_balance(arm, ["control", "treatment"], 0,
                                    {"heavy": heavy, "tiny": tiny})
    by = {d.covariate: d for d in out}
    assert by["heavy"].smd == pytest.approx(0.75) and by["heavy"].flagged
    assert by["tiny"].smd == pytest.approx(0.05) and not by["tiny"].flagged
    # no relabelling of 6,000 subjects comes near SMD 0.75: the smallest p a draw count gives
    assert by["heavy"].p_adjusted == by["heavy"].p_value == pytest.approx(1 / 1001)
    assert by["tiny"].p_adjusted >= by["tiny"].p_value  # max-T: the family's p is larger
    again = balance.covariate_balance(arm, ["control", "treatment"], 0,
                                      {"heavy": heavy, "tiny": tiny})
    assert [d.p_adjusted for d in again] == [d.p_adjusted for d in out]  # seeded: repeatable
    # |SMD| >= 0.1 in a small sample is not enough: the family-wise p must be below alpha too
    small = balance.covariate_balance(np.array([0] * 12 + [1] * 12), ["control", "treatment"],
                                      0, {"x": np.concatenate([_exact(rng, 12, 0),
                                                               _exact(rng, 12, 0.5)])})[0]
    assert small.smd == pytest.approx(0.5) and small.p_value > 0.2 and not small.flagged
    # missing values are left out covariate by covariate
    vals = heavy.copy()
    vals[:100] = np.nan
    one = balance.covariate_balance(arm, ["control", "treatment"], 0, {"x": vals})[0]
    assert (one.n_control, one.n_arm) == (5600, 300)


def test_independence_and_overlap_of_two_assignments():
    arms_a, arms_b = ["control", "treatment"], ["control", "treatment"]
    same = [("treatment" if i % 20 == 0 else "control",) * 2 for i in range(4000)]
    res = balance.independence("other", arms_a, arms_b, same, control_a="control",
                               control_b="control")
    assert res.shared == 4000 and res.alarm and res.judged
    over = res.overlaps[0]
    assert (over.arm, over.other_arm, over.observed, over.expected) == (
        "treatment", "treatment", 200, 10.0)
    assert over.ratio == pytest.approx(20.0)
    ref = stats.chi2_contingency([[3800, 0], [0, 200]], correction=False)
    assert res.chi2 == pytest.approx(ref.statistic)
    a = Experiment("a", "1", "control=95,treatment=5").assign_many(range(4000))
    b = Experiment("b", "2", "control=95,treatment=5").assign_many(range(4000))
    free = balance.independence("b", arms_a, arms_b, list(zip(a, b, strict=True)),
                                control_a="control", control_b="control")
    assert not free.alarm and free.p_value > 0.001


def test_order_tests_catch_bucketing_on_the_id_and_id_ranges_but_not_a_salt():
    ids = [str(i) for i in range(1, 20_001)]
    names = ["control", "treatment"]
    bucket = np.array([1 if canary_arm(s) == "treatment" else 0 for s in ids])
    flagged = {t.test for t in balance.order_tests(ids, bucket, names, 0) if t.flagged}
    assert flagged == {"id-mod-10", "id-mod-100"}
    ranged = np.array([1 if int(s) <= 1000 else 0 for s in ids])
    flagged = {t.test for t in balance.order_tests(ids, ranged, names, 0) if t.flagged}
    assert "id-rank" in flagged
    salted = Experiment("t", "canary:0", "control=95,treatment=5").arm_indices(ids)
    tests = balance.order_tests(ids, salted, names, 0)
    assert [t.test for t in tests] == ["id-rank", "id-mod-10", "id-mod-100"]
    assert not any(t.flagged for t in tests)
    # uuids do not end in numbers: nothing to judge
    assert balance.order_tests([f"{i:x}-a" for i in range(100)], salted[:100], names, 0) == []


def test_the_salt_search_keeps_the_most_balanced_candidate():
    rows = canary_population(5000)
    subjects = [r["subject"] for r in rows]
    cols = {"sessions_30d": np.array([r["sessions_30d"] for r in rows], float),
            "spend_90d": np.array([r["spend_90d"] for r in rows], float)}
    res = search.search("exp", "control=90,treatment=10", subjects, cols, candidates=30)
    assert (res.candidates, res.criterion, res.subjects) == (30, "max_abs_smd", 5000)

    def worst(salt):
        exp = Experiment("exp", salt, "control=90,treatment=10")
        diffs = balance.covariate_balance(exp.arm_indices(subjects), ["control", "treatment"],
                                          0, cols, draws=0)
        return max(abs(d.smd) for d in diffs), {d.covariate: d.smd for d in diffs}

    direct = [worst(f"exp:{i}")[0] for i in range(30)]
    assert res.index == int(np.argmin(direct)) and res.salt == f"exp:{res.index}"
    assert res.achieved == pytest.approx(min(direct), abs=1e-9)
    assert res.first == pytest.approx(direct[0], abs=1e-9)
    assert res.median == pytest.approx(float(np.median(direct)), abs=1e-9)
    assert res.smd["treatment"] == pytest.approx(worst(res.salt)[1], abs=1e-9)
    again = search.search("exp", "control=90,treatment=10", subjects, cols, candidates=30,
                          workers=1)
    assert again.salt == res.salt  # deterministic, whatever the threads
    d = res.to_dict()
    assert d["candidate_salts"] == "exp:0..29" and d["salt_index"] == res.index
    with pytest.raises(ValidationError, match="candidates: must be at least 1"):
        search.search("exp", "a=1,b=1", subjects, cols, candidates=0)


def test_tables_read_csv_and_jsonl_and_name_bad_lines(tmp_path):
    csv = b"subject,sessions,country,signup_at\nu1,3,fr,2024-01-01T00:00:00Z\nu2,,de,\n"
    t = parse_table(csv, "pre.csv")
    assert t.subjects == ["u1", "u2"] and list(t.text) == ["country"]
    assert t.numeric["sessions"][0] == 3 and math.isnan(t.numeric["sessions"][1])
    assert t.times == {"signup_at"} and t.covariates(None) == ["sessions"]
    jl = b'{"subject": 1, "x": 2.5, "ok": true}\n{"subject": "2", "x": null, "ok": false}\n'
    t = parse_table(jl, "pre.jsonl")
    assert t.subjects == ["1", "2"] and list(t.numeric["ok"]) == [1.0, 0.0]
    with pytest.raises(ValidationError, match="line 3: subject: pre.csv: subject 'u1' repeats "
                                              "line 2"):
        parse_table(b"subject,x\nu1,1\nu1,2\n", "pre.csv")
    with pytest.raises(ValidationError, match="pre.csv has no 'subject' column"):
        parse_table(b"user,x\nu1,1\n", "pre.csv")
    with pytest.raises(ValidationError, match="covariates: 'country' holds non-numeric values"):
        parse_table(csv, "pre.csv").covariates(["country"])
    with pytest.raises(ValidationError, match="pre.csv, line 3: 1 cells where the header has 2"):
        parse_table(b"subject,x\nu1,1\nu2\n", "pre.csv")


def test_a_rare_flag_absent_from_a_small_arm_is_judged_by_its_own_null():
    # 4% prevalence, a 5% arm holding none of the flagged: Welch's t saw zero variance in the
    # arm and reported p ~ 1e-9; relabelling shows an arm without the flag is common
    arm = np.array([0] * 953 + [1] * 47)
    flag = np.zeros(1000)
    flag[:40] = 1.0  # all in control: 40/953 = 4.2% against 0/47
    d = balance.covariate_balance(arm, ["control", "treatment"], 0, {"flag": flag})[0]
    assert d.smd == pytest.approx(-0.0419 / math.sqrt(0.0402 / 2), abs=0.01)
    assert abs(d.smd) >= 0.1 and d.p_adjusted > 0.1 and not d.flagged
    t, _, p = balance.welch(0.0, 0.0, 47, flag[:953].mean(), flag[:953].var(ddof=1), 953)
    assert p < 1e-8  # what the t-test said


def test_eighteen_digit_ids_are_read_exactly():
    ids = [str(10**17 + 7 * i) for i in range(1, 20_001)]  # beyond float64's 2**53
    exact, ok = balance.numeric_ids(ids)
    assert ok.all() and exact.dtype == np.int64 and exact[5] == 10**17 + 42
    bucket = np.array([1 if int(s) % 100 < 5 else 0 for s in ids])
    mod = {t.test: t for t in balance.order_tests(ids, bucket, ["control", "treatment"], 0)}
    assert mod["id-mod-100"].effect == pytest.approx(1.0) and mod["id-mod-100"].flagged


def test_holm_is_step_down_and_monotone():
    assert balance.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert balance.holm([]) == []


# --- exact p-values (MW403) ------------------------------------------------------------------

def test_fisher_cells_are_fishers_tails_to_nine_digits_far_into_the_tail():
    rng = np.random.default_rng(11)
    n = rng.integers(100, 50_000, 400)
    r = (n * rng.uniform(0.01, 0.6, 400)).astype(np.int64) + 1
    c = (n * rng.uniform(0.01, 0.6, 400)).astype(np.int64) + 1
    mean = r * c / n
    x = np.clip(np.round(mean + rng.normal(0, 6, 400) * np.sqrt(mean)),
                np.maximum(0, r + c - n), np.minimum(r, c)).astype(np.int64)
    p = exact.fisher_cells(x, n, r, c)
    ref = np.minimum(1, 2 * np.minimum(stats.hypergeom.cdf(x, n, r, c),
                                       stats.hypergeom.sf(x - 1, n, r, c)))
    assert (ref < 1e-12).sum() > 20  # the far tail is exercised
    assert p == pytest.approx(ref, rel=1e-8)
    # near scipy's own two-sided Fisher test, which orders tables by their probability
    # rather than doubling the observed side's tail (the two differ by less than 2x)
    for i in range(40):
        t = [[x[i], r[i] - x[i]], [c[i] - x[i], n[i] - r[i] - c[i] + x[i]]]
        assert 0.5 * p[i] <= stats.fisher_exact(t).pvalue <= 1.5 * p[i]


def test_tables_of_more_arms_are_judged_cell_by_cell_with_bonferroni():
    t = np.array([[300, 20], [300, 20], [300, 60]])  # a 34/33/33 x 95/5 pair, one hot cell
    (p, cells), = exact.exact_independence([t])
    assert cells == 3  # each row against the others; one column stands for both
    one = [exact.fisher_cells([t[i, 1]], [t.sum()], [t[i].sum()], [t[:, 1].sum()])[0]
           for i in range(3)]
    assert p == pytest.approx(3 * min(one))
    res = balance.independence_table("b", ["c", "a", "b"], ["c", "t"], t, control_a="c",
                                     control_b="c")
    assert (res.cells, res.judged, res.p_value) == (3, True, p) and res.method.endswith(
        "Bonferroni")
    # empty rows and columns are left out; one arm on a side: nothing to test
    assert exact.exact_independence([np.array([[5, 0, 7], [0, 0, 0], [9, 0, 2]])])[0][1] == 1
    assert exact.exact_independence([np.array([[5, 7], [0, 0]])]) == [(None, 0)]


def test_a_sparse_table_of_many_arms_keeps_its_level():
    """34/33/33 x 95/5 x … over 400 shared subjects (cells expect 6-7): the collapsed exact
    test rejects at most as often as it claims (simulated, 4,000 tables)."""
    rng = np.random.default_rng(2)
    rows = rng.choice(3, size=(4000, 400), p=[0.34, 0.33, 0.33])
    cols = rng.choice(3, size=(4000, 400), p=[0.9, 0.05, 0.05])
    tables = [np.bincount(a * 3 + b, minlength=9).reshape(3, 3) for a, b in zip(rows, cols,
                                                                               strict=True)]
    p = np.array([q for q, _ in exact.exact_independence(tables)])
    assert (p <= 0.01).mean() <= 0.01 and (p <= 0.05).mean() <= 0.05


def test_the_id_rank_test_is_never_below_the_exact_mann_whitney_p_value():
    """The normal approximation of the rank test overstates the p-value in the tail (the
    rank sum's tails are lighter than the normal's), so it keeps its level there."""
    for na, nc in ((20, 300), (40, 150)):
        for k in range(na, na + nc, 15):
            arm = np.zeros(na + nc, dtype=np.int64)
            arm[np.r_[np.arange(na - 1), k]] = 1  # the arm holds the smallest ids, but one
            ids = np.arange(10**17, 10**17 + na + nc, dtype=np.int64)
            (t,) = balance._rank_tests("id-rank", ids, arm, ["control", "treatment"], 0,
                                       np.ones(na + nc, dtype=bool))
            exact = stats.mannwhitneyu(np.flatnonzero(arm == 1), np.flatnonzero(arm == 0),
                                       method="exact").pvalue
            assert t.p_value >= exact


def test_eighteen_digit_ids_are_ranked_exactly():
    """Consecutive 18-digit ids are 1 apart, 16 times closer than float64 can tell apart:
    ranked as floats they tie in blocks; ranked as integers they do not."""
    n = 2000
    ids = np.arange(10**17, 10**17 + n, dtype=np.int64)
    arm = (np.arange(n) % 2).astype(np.int64)  # alternating: no order effect
    (t,) = balance._rank_tests("id-rank", ids, arm, ["control", "treatment"], 0,
                               np.ones(n, dtype=bool))
    assert t.statistic == (n // 2) ** 2 / 2 + n // 4  # each treatment id is one above a control
    assert t.p_value > 0.9
