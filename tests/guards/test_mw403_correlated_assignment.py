"""MW403 correlated-assignment: hash-free bucketing on the id, and experiments whose arms
follow each other."""

from __future__ import annotations

from ..rollout.world import canary_arm, canary_population, create, expose, write_population


def test_MW403_fires_for_the_hash_free_canary_and_a_reused_bucketing(ledger, findings):
    create(ledger.store, "canary", "unused")
    create(ledger.store, "search-rerank", "unused-too")
    subjects = [str(i) for i in range(1, 20_001)]
    expose(ledger.store, "canary", [(s, canary_arm(s)) for s in subjects], step=1000)
    expose(ledger.store, "search-rerank", [(s, canary_arm(s)) for s in subjects], step=1000)
    got = findings("MW403")
    order = {(f.subject, f.evidence["test"]) for f in got if "test" in f.evidence}
    assert order == {(n, t) for n in ("canary", "search-rerank")
                     for t in ("id-mod-10", "id-mod-100")}
    (pair,) = [f for f in got if "other" in f.evidence]
    assert (pair.subject, pair.evidence["other"], pair.evidence["shared"]) == (
        "canary", "search-rerank", 20_000)
    assert pair.message.startswith("canary and search-rerank share 20,000 subjects and their "
                                   "arms are not independent (Fisher's exact test, p = ")
    assert pair.message.endswith("treatment∩treatment holds 1,000 subjects, 20.0x the 50 "
                                 "expected")
    mod = next(f for f in got if f.evidence.get("test") == "id-mod-100")
    assert mod.message.startswith("canary: the arm follows the subject id's last two digits (p = ")
    assert mod.message.endswith("Cramér's V 1.00): a hash-free bucketing")
    assert len({f.fingerprint for f in got}) == len(got) == 5


def test_MW403_clean_for_salted_experiments_over_the_same_users(ledger, fleet, findings,
                                                               tmp_path):
    pre = write_population(tmp_path / "pre.csv", canary_population())
    a = create(ledger.store, "canary", "canary:0")
    b = create(ledger.store, "search-rerank", "search-rerank:0", arms="control=1,treatment=1")
    subjects = [str(i) for i in range(1, 20_001)]
    expose(ledger.store, "canary", [(s, a.assign(s)) for s in subjects], step=1000)
    expose(ledger.store, "search-rerank", [(s, b.assign(s)) for s in subjects], step=1000)
    assert findings("MW403") == []
    assert findings("MW403", pre_period=str(pre)) == []  # sign-up time judged too


def test_MW403_fires_when_arms_follow_sign_up_order(ledger, findings, tmp_path):
    pre = write_population(tmp_path / "pre.csv", canary_population(4000))
    create(ledger.store, "early", "unused")
    # uuid-like ids hide the order; sign-up time still shows it
    pairs = [(f"user-{i:04d}x", "treatment" if i <= 400 else "control") for i in range(1, 4001)]
    rows = canary_population(4000)
    for r, (s, _a) in zip(rows, pairs, strict=True):
        r["subject"] = s
    write_population(pre, rows)
    expose(ledger.store, "early", pairs, step=1000)
    got = findings("MW403", pre_period=str(pre))
    assert [(f.evidence["test"], f.evidence["arm"]) for f in got] == [
        ("signup_at-rank", "treatment")]
    assert got[0].message.startswith("early: treatment against control follows signup_at order")


def _sparse_pair(ledger, copy: float):
    """Two 95/5 experiments over the same 1,200 users (treatment∩treatment expects 3: too
    sparse for chi-square, judged by Fisher's exact test); the second takes the first's arm
    for ``copy`` of the users (every 1/copy-th)."""
    a = create(ledger.store, "banner", "banner:7")
    b = create(ledger.store, "ranker", "ranker:7")
    subjects = [f"u-{i:06d}x" for i in range(1, 1201)]  # no trailing number: no id tests
    every = round(1 / copy) if copy else 0
    arms_b = [a.assign(s) if every and i % every == 0 else b.assign(s)
              for i, s in enumerate(subjects)]
    expose(ledger.store, "banner", [(s, a.assign(s)) for s in subjects], step=1000)
    expose(ledger.store, "ranker", list(zip(subjects, arms_b, strict=True)), step=1000)


def test_MW403_fires_for_a_sparse_pair_of_small_arms_that_follow_each_other(ledger,
                                                                           findings):
    _sparse_pair(ledger, copy=0.5)
    (f,) = findings("MW403")
    assert (f.subject, f.evidence["other"], f.evidence["shared"], f.evidence["cells"]) == (
        "banner", "ranker", 1200, 1)
    assert f.evidence["p_adjusted"] < 1e-6 and f.evidence["method"] == "Fisher's exact test"
    assert "(Fisher's exact test, p = " in f.message
    over = f.evidence["overlaps"][0]
    assert over["expected"] < 5 and over["observed"] >= 5 * over["expected"]


def test_MW403_clean_for_a_sparse_pair_of_small_arms_salted_apart(ledger, findings):
    _sparse_pair(ledger, copy=0.0)
    assert findings("MW403") == []
