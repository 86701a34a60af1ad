"""``modelward experiment`` end to end on a real ledger, asserting exact output and exit codes
(1 when a check alarms, 2 on bad input)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest
from click.testing import CliRunner

from modelward.cli.app import main
from modelward.ledger import experiments as ledger_experiments
from modelward.ledger.engine import Store
from modelward.rollout.assignment import Experiment
from modelward.settings import Settings

from .world import (
    DAY,
    MIN,
    T0,
    canary_arm,
    canary_population,
    expose,
    fingerprint,
    write_population,
)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(*args) -> Result:
    with CliRunner().isolation() as (stdout, stderr, _output):
        try:
            main([*map(str, args)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return Result(code, stdout.getvalue().decode(), stderr.getvalue().decode())


@pytest.fixture
def home(tmp_path, monkeypatch, backend_url):
    if backend_url == "sqlite://":
        backend_url = f"sqlite:///{tmp_path / 'cli.db'}"  # the CLI needs a database that persists
    monkeypatch.setenv("MODELWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELWARD_DATABASE_URL", backend_url)
    assert run("init").code == 0
    store = Store(Settings({}))
    yield store
    store.dispose()


@pytest.fixture
def pre(tmp_path):
    return write_population(tmp_path / "pre.csv", canary_population())


def test_create_with_balance_search_records_the_report(home, pre):
    res = run("experiment", "create", "checkout", "--arms", "control=95,treatment=5",
              "--balance-on", pre, "--covariates", "sessions_30d,spend_90d",
              "--candidates", "20", "--json")
    assert (res.code, res.err) == (0, "")
    made = orjson.loads(res.out)
    b = made["balance"]
    assert (made["salt"], b["salt"], b["criterion"], b["candidates"]) == (
        f"checkout:{b['salt_index']}", made["salt"], "max_abs_smd", 20)
    assert b["achieved"] <= b["candidate_0"] and b["achieved"] <= b["median"]
    assert b["population"]["subjects"] == 20_000
    assert b["population"]["covariates"] == ["sessions_30d", "spend_90d"]
    assert sorted(b["smd"]["treatment"]) == ["sessions_30d", "spend_90d"]
    assert run("experiment", "show", "checkout").out.splitlines()[:3] == [
        "experiment checkout", "  arms     control=95, treatment=5",
        f"  salt     {made['salt']}"]
    res = run("experiment", "check", "checkout")
    assert res.code == 0, res.out
    lines = res.out.splitlines()
    assert lines[0] == f"experiment checkout: control=95, treatment=5 (salt {made['salt']})"
    assert lines[1] == ("20,000 subjects from the salt's assignment of the pre-period "
                        "population (no exposures yet)")
    assert f"covariate balance ({pre} as stored at creation (sha256:" in res.out
    assert lines[-1] == "no problem found"
    res = run("experiment", "create", "checkout", "--arms", "a=1,b=1")
    assert res.code == 2 and res.err.startswith("error: NAME: experiment 'checkout' already exists")


def test_create_list_assign_and_errors(home):
    res = run("experiment", "create", "exp-a", "--arms", "control=90,treatment=10", "--salt", "a:1")
    assert (res.code, res.out) == (0, "created experiment exp-a: control=90, treatment=10; "
                                      "salt a:1\n")
    res = run("experiment", "create", "exp-b", "--arms", "control=1,treatment=1")
    assert res.code == 0 and len(res.out.split("; salt ")[1].strip()) == 32  # random 128 bits
    exp = Experiment("exp-a", "a:1", "control=90,treatment=10")
    res = run("experiment", "assign", "exp-a", "u-1", "u-2")
    assert res.out == "".join(f"u-{i}  {exp.uniform(f'u-{i}')!r}  {exp.assign(f'u-{i}')}\n"
                              for i in (1, 2))
    assert [e["name"] for e in orjson.loads(run("experiment", "list", "--json").out)] == [
        "exp-a", "exp-b"]
    for args, message in (
            (["create", "x", "--arms", "control=95"], "error: --arms: an experiment needs at "
                                                      "least two arms"),
            (["create", "x", "--arms", "a=1,b=1", "--salt", "s", "--balance-on", "f.csv"],
             "error: --salt: give --salt or --balance-on, not both"),
            (["create", "x", "--arms", "a=1,b=1", "--covariates", "c"],
             "error: --balance-on: --covariates and --candidates need --balance-on"),
            (["create", "x", "--arms", "a=1,b=1", "--balance-on", "missing.csv"],
             "error: file: cannot read missing.csv: No such file or directory"),
            (["check", "nope"], "error: no experiment 'nope' in the ledger"),
            (["check", "exp-a"], "error: --pre-period: exp-a has no exposures yet and no "
                                 "pre-period population")):
        res = run("experiment", *args)
        assert res.code == 2 and res.err.splitlines()[0] == message, (args, res.err)


def test_audit_of_the_hash_free_canary_exits_1_naming_each_problem(home, pre, tmp_path):
    canary = tmp_path / "canary.csv"
    canary.write_text("subject,arm\n" + "".join(f"{r['subject']},{canary_arm(r['subject'])}\n"
                                               for r in canary_population()))
    res = run("experiment", "audit", "--assignments", canary, "--pre-period", pre,
              "--arms", "control=95,treatment=5")
    assert res.code == 1 and res.err == ""
    lines = res.out.splitlines()
    assert lines[:8] == [
        f"assignments {canary}: control=0.95, treatment=0.05 (control arm: control)",
        "20,000 subjects from the assignments file", "",
        "sample ratio: ok",
        "  control    19,000  expected 19,000.0",
        "  treatment   1,000  expected 1,000.0",
        "  chi-square 0.00, 1 df, p = 1 (alarm below 0.001)", ""]
    assert lines[-5:] == [
        "4 problems:",
        "  - treatment differs from control on sessions_30d (SMD +4.49)",
        "  - treatment differs from control on spend_90d (SMD +1.22)",
        "  - the arm follows id-mod-10 (p = 5.9e-46)",
        "  - the arm follows id-mod-100 (p = 7.1e-267)"]
    data = orjson.loads(run("experiment", "audit", "--assignments", canary, "--json").out)
    assert data["sample_ratio"] is None and data["balance"] == []
    assert data["notes"] == ["no --arms allocation given: sample ratio not checked",
                             "no pre-period population: covariate balance not checked"]
    assert [t["test"] for t in data["order"] if t["flagged"]] == ["id-mod-10", "id-mod-100"]
    res = run("experiment", "audit", "--assignments", canary, "--arm-column", "bucket")
    assert res.code == 2 and "no 'bucket' column" in res.err


def test_check_over_exposures_flags_a_mismatch_and_a_correlated_experiment(home):
    with home.write() as conn:
        ledger_experiments.create(conn, "a", "a:1", [("control", 95.0), ("treatment", 5.0)])
        ledger_experiments.create(conn, "b", "b:1", [("control", 95.0), ("treatment", 5.0)])
    subjects = [str(i) for i in range(1, 10_001)]
    a = Experiment("a", "a:1", "control=95,treatment=5")
    expose(home, "a", [(s, a.assign(s)) for s in subjects])
    expose(home, "b", [(s, a.assign(s)) for s in subjects])  # b reused a's assignment
    res = run("experiment", "check", "a")
    assert res.code == 1
    assert "  b: 10,000 shared, Fisher's exact test, " in res.out and ": CORRELATED; " in res.out
    assert res.out.splitlines()[-2:] == ["1 problem:", "  - arms correlate with b's (p = 0)"]
    res = run("experiment", "check", "b")
    assert res.code == 1 and "subjects recorded in another arm than the salt gives them" in res.out


def test_regimes_prints_the_metric_per_arm_per_regime(home):
    emb = "sha256:" + "e" * 64
    fingerprint(home, emb, T0 - DAY, 1)
    fingerprint(home, emb, T0 + 100 * MIN, 2)
    with home.write() as conn:
        ledger_experiments.create(conn, "rag", "r:1", [("control", 1.0), ("treatment", 1.0)])
    pairs = [(f"u{i}", "treatment" if i % 2 else "control") for i in range(200)]
    expose(home, "rag", pairs, step=MIN, embedder_digest=emb,
           metric=lambda i, s, arm: (1.0 if arm == "treatment" else 0.0) * (i < 100) + i % 3)
    res = run("experiment", "regimes", "rag")
    assert res.code == 0
    assert res.out.splitlines()[:4] == [
        "experiment rag: 200 exposures in 2 regimes (fingerprint_epoch changed); metric: metric",
        "",
        "R1  2026-03-01T12:00:00Z to 2026-03-01T13:39:00Z  100 exposures",
        f"  model - · embedder {emb[:19]}… · fingerprint_epoch 1 · vendor_model_id -"]
    assert "  Cochran's Q " in res.out and "R2: effect +0" in res.out
    data = orjson.loads(run("experiment", "regimes", "rag", "--json").out)
    assert [r["exposures"] for r in data["regimes"]] == [100, 100]
    assert data["interactions"][0]["effects"]["R1"]["effect"] == pytest.approx(1.0, abs=0.1)


def test_regimes_names_the_metric_and_gives_each_effect_its_welch_interval(home):
    res = run("experiment", "create", "team/rag", "--arms", "control=1,treatment=1",
              "--metric", "resolved")
    assert res.code == 0, res.err
    assert run("experiment", "create", "x", "--arms", "control=1,treatment=1",
               "--metric", " ").code == 2
    pairs = [(f"u{i}", "treatment" if i % 2 else "control") for i in range(120)]
    expose(home, "team/rag", pairs, step=MIN, metric=lambda i, s, arm: float(i % 5)
           + (0.5 if arm == "treatment" else 0.0))
    res = run("experiment", "regimes", "team/rag")
    assert res.code == 0 and res.out.splitlines()[0].endswith("; metric: resolved")
    data = orjson.loads(run("experiment", "regimes", "team/rag", "--json").out)
    assert data["metric"] == "resolved"
    e = data["interactions"][0]["effects"]["R1"]
    # Welch's interval over subjects, computed independently here
    from scipy import stats
    t = [float(i % 5) + 0.5 for i in range(120) if i % 2]
    c = [float(i % 5) for i in range(120) if not i % 2]
    welch = stats.ttest_ind(t, c, equal_var=False).confidence_interval(0.95)
    assert (e["low"], e["high"]) == (pytest.approx(welch.low), pytest.approx(welch.high))
    assert e["level"] == 0.95 and e["low"] < e["effect"] < e["high"]
    assert f"R1: effect {e['effect']:+.4g}, 95% CI [{e['low']:+.4g}, {e['high']:+.4g}]" \
        in res.out


def test_audit_against_other_assignment_files(home, tmp_path):
    ids = [str(i) for i in range(1, 10_001)]
    canary = tmp_path / "canary.csv"
    canary.write_text("subject,arm\n" + "".join(f"{s},{canary_arm(s)}\n" for s in ids))
    reused = tmp_path / "search.csv"  # the same buckets, other arm names
    reused.write_text("subject,arm\n" + "".join(
        f"{s},{'on' if canary_arm(s) == 'treatment' else 'control'}\n" for s in ids))
    salted = tmp_path / "salted.csv"
    exp = Experiment("s", "s:1", "control=1,treatment=1")
    salted.write_text("subject,arm\n" + "".join(f"{s},{exp.assign(s)}\n" for s in ids))
    res = run("experiment", "audit", "--assignments", canary, "--against", reused,
              "--against", salted)
    assert res.code == 1 and res.err == ""
    assert f"  {reused}: 10,000 shared, Fisher's exact test, " in res.out
    assert f"{reused}'s (p = 0)" in res.out  # a problem, named by its file
    line = next(x for x in res.out.splitlines() if x.startswith(f"  {salted}: 10,000 shared"))
    assert line.split(": ")[-1].startswith("ok")
    data = orjson.loads(run("experiment", "audit", "--assignments", canary, "--against",
                            salted, "--json").out)
    (corr,) = data["correlations"]
    assert (corr["other"], corr["shared"], corr["alarm"]) == (str(salted), 10_000, False)
    one = tmp_path / "one.csv"
    one.write_text("subject,arm\n1,control\n2,control\n")
    res = run("experiment", "audit", "--assignments", canary, "--against", one)
    assert res.code == 2 and "one.csv holds 1 arm(s); a correlation needs two" in res.err
    res = run("experiment", "audit", "--assignments", canary, "--against", tmp_path / "no.csv")
    assert res.code == 2 and "cannot read" in res.err
