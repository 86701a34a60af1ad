"""`modelward evalset compare`: an eval set's segment and source mix against production
decisions in a window, on every backend."""

from __future__ import annotations

import math

import orjson
import pytest
from scipy.stats import hypergeom
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.errors import UnknownArtifactError, ValidationError
from modelward.evals.harness.evalsets import EvalItem, parse_evalset
from modelward.evals.representativeness import compare as rep
from modelward.ledger import aliases, artifacts
from tests.evals.mix import MIN, NOW, T0, jsonl, record, register_evalset, thumbs_up_items, traffic


def _items(dicts) -> list[EvalItem]:
    return parse_evalset(jsonl(dicts))


def _shares(dim) -> list[tuple]:
    return [(s.cell, s.traffic, s.items, round(s.traffic_share, 4), round(s.eval_share, 4),
             None if s.ratio is None else round(s.ratio, 4)) for s in dim.shares]


def test_a_thumbs_up_set_against_traffic(ledger):
    ids = traffic(ledger.store)
    items = _items(thumbs_up_items(ids))
    with ledger.store.read() as conn:
        comp = rep.compare(conn, items, since=T0, until=NOW)
    assert (comp.items, comp.linked, comp.traffic.total) == (40, 36, 1000)
    tier, topic = comp.dimensions
    assert (tier.dim, topic.dim) == (("tier",), ("topic",))
    assert _shares(tier) == [(("free",), 500, 32, 0.5, 0.8, 1.6),
                             (("enterprise",), 300, 2, 0.3, 0.05, 0.1667),
                             (("pro",), 200, 6, 0.2, 0.15, 0.75)]
    assert tier.tvd == pytest.approx(0.3) and tier.chi2 == pytest.approx(16.033333, rel=1e-6)
    assert (tier.dof, tier.labelled, tier.low_expected) == (2, 40, 0)
    assert tier.p_value == pytest.approx(math.exp(-tier.chi2 / 2), rel=1e-12)
    assert _shares(topic) == [(("billing",), 500, 36, 0.5, 0.9, 1.8),
                              (("api",), 300, 4, 0.3, 0.1, 0.3333),
                              (("sso",), 200, 0, 0.2, 0.0, 0.0)]
    assert topic.tvd == pytest.approx(0.4) and topic.chi2 == pytest.approx(26.133333, rel=1e-6)
    # the ratio alone (alpha 1): three segments below half their traffic share
    under = rep.under_represented(comp, min_traffic_share=0.1, min_ratio=0.5)
    assert [rep.segment_label(d.dim, s.cell) for d, s in under] == [
        "tier=enterprise", "topic=api", "topic=sso"]
    # 2 of 40 items where traffic has 30%: Fisher's exact lower tail, Holm over 6 segments
    enterprise = under[0]
    assert enterprise.p_value == pytest.approx(
        hypergeom.cdf(2, 1040, 302, 40), rel=1e-12)
    assert enterprise.p_value < 2e-4 and enterprise.judged == 6
    assert all(u.p_value < u.adjusted <= 6 * u.p_value for u in under)
    # at alpha 1% the api shortfall (4 of 40 where traffic has 30%) can be chance
    assert [rep.segment_label(d.dim, s.cell) for d, s in rep.under_represented(
        comp, min_traffic_share=0.1, min_ratio=0.5, alpha=0.01)] == [
        "tier=enterprise", "topic=sso"]
    assert [tuple(x) for x in rep.under_represented(comp, min_traffic_share=0.25,
                                                     min_ratio=0.2)] == [(tier, tier.shares[1])]
    assert comp.source_shares() == [("thumbs_up", 36, 0.9), ("curated", 4, 0.1)]
    assert rep.dominant_sources(comp) == [("thumbs_up", 36, 0.9)]
    assert rep.dominant_sources(comp, max_share=0.9) == []
    doc = comp.to_dict()
    assert doc["traffic"] == {"decisions": 1000, "since": "2026-03-01T12:00:00Z",
                              "until": "2026-03-03T12:00:00Z"}
    assert doc["dimensions"][0]["segments"][1] == {
        "segment": {"tier": "enterprise"}, "traffic": 300, "traffic_share": 0.3, "items": 2,
        "eval_share": 0.05, "ratio": pytest.approx(1 / 6)}


def test_the_window_includes_since_and_excludes_until(ledger):
    traffic(ledger.store)  # one decision a minute from T0
    items = _items([{"input": "x", "segments": {"tier": "free"}}])
    with ledger.store.read() as conn:
        assert rep.traffic(conn, T0 + MIN, T0 + 11 * MIN).total == 10
        assert rep.traffic(conn, NOW, NOW + MIN).total == 0
        comp = rep.compare(conn, items, since=NOW, until=NOW + MIN)
    assert comp.traffic.total == 0 and comp.dimensions == [
        rep.DimensionReport(("tier",), [rep.Share(("free",), 0, 0.0, 1, 1.0, None)], None, None,
                            0, None, 0, 1)]
    assert rep.under_represented(comp, min_traffic_share=0.0, min_ratio=1.0) == []


def test_item_segments_override_the_decision_they_link_to(ledger):
    ids = traffic(ledger.store, {("enterprise", "sso"): 3})
    items = _items([{"id": "a", "input": "x", "decision_id": ids[("enterprise", "sso")][0],
                     "segments": {"tier": "pro"}},
                    {"id": "b", "input": "y", "decision_id": "01890000-0000-7000-8000-0000000000ff"},
                    {"id": "c", "input": "z", "decision_id": "not-a-uuid"}])
    with ledger.store.read() as conn:
        segs, linked = rep.item_segments(conn, items)
    assert segs == [{"tier": "pro", "topic": "sso"}, {}, {}] and linked == 1


def test_default_dimensions_skip_id_like_keys_and_values_of_any_json_type(ledger):
    record(ledger.store, [dict(at=T0 + i, segments={"tier": "free", "session": f"s{i}",
                                                    "beta": i % 2 == 0, "version": 2})
                          for i in range(60)])
    items = _items([{"input": "x", "segments": {"beta": "true", "version": "2"}}])
    with ledger.store.read() as conn:
        comp = rep.compare(conn, items, since=T0, until=NOW)
        joint = rep.compare(conn, items, since=T0, until=NOW, by=rep.parse_by("tier+beta"))
    assert [d.dim for d in comp.dimensions] == [("beta",), ("tier",), ("version",)]
    beta, tier, version = comp.dimensions
    # equal traffic: the value with more items first
    assert _shares(beta) == [(("true",), 30, 1, 0.5, 1.0, 2.0), (("false",), 30, 0, 0.5, 0.0, 0.0)]
    assert tier.labelled == 0 and _shares(tier)[-1] == ((None,), 0, 1, 0.0, 1.0, None)
    assert (tier.chi2, tier.dof, tier.p_value) == (math.inf, 1, 0.0)
    assert tier.to_dict()["chi2"] is None and tier.to_dict()["chi2_infinite"] is True
    assert _shares(version) == [(("2",), 60, 1, 1.0, 1.0, 1.0)] and version.chi2 is None
    # tier: no item carries it, so nothing is judged on it
    assert [tuple(x) for x in rep.under_represented(comp, min_traffic_share=0.1,
                                                     min_ratio=0.5)] == [(beta, beta.shares[1])]
    assert [s.cell for s in joint.dimensions[0].shares] == [
        ("free", "false"), ("free", "true"), (None, "true")]
    assert rep.segment_label(("tier", "beta"), (None, "true")) == "tier=(none), beta=true"


def test_parse_by():
    assert rep.parse_by("tier, topic,tier+topic") == [("tier",), ("topic",), ("tier", "topic")]
    assert rep.parse_by(["tier+topic"]) == [("tier", "topic")]
    assert rep.parse_by(None) is None
    with pytest.raises(ValidationError, match=r"^--by: 'tier\+' names an empty segment key"):
        rep.parse_by("tier+")
    with pytest.raises(ValidationError, match="^--by: name at least one segment key"):
        rep.parse_by(" , ")


# --- the command ---------------------------------------------------------------------------

@pytest.fixture
def db(cli_ledger):
    return cli_ledger


def _mw(db, *args):
    return CliRunner().invoke(app, [*db.args, *args])


def test_compare_command_prints_shares_tests_and_flags(db):
    ids = traffic(db.store)
    digest = register_evalset(db.store, thumbs_up_items(ids), "support-evals", version="v2")
    with db.store.write() as conn:
        aliases.set_alias(conn, "evals/support", digest)
    run = _mw(db, "evalset", "compare", "evals/support", "--until", "2026-03-03T12:00:00Z",
              "--window", "2d")
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        f"eval set support-evals@v2 ({digest[:19]}…): 40 items, 36 linked to decisions\n"
        "traffic: 1,000 decisions from 2026-03-01T12:00:00Z to 2026-03-03T12:00:00Z\n"
        "\n"
        "tier: traffic, eval, ratio\n"
        "  free        500  50.0%  32  80.0%  1.60\n"
        "  enterprise  300  30.0%   2   5.0%  0.17  under-represented\n"
        "  pro         200  20.0%   6  15.0%  0.75\n"
        "  total variation 0.300 · chi-square 16.03, 2 df, p = 0.00033\n"
        "\n"
        "topic: traffic, eval, ratio\n"
        "  billing  500  50.0%  36  90.0%  1.80\n"
        "  api      300  30.0%   4  10.0%  0.33\n"
        "  sso      200  20.0%   0   0.0%  0.00  under-represented\n"
        "  total variation 0.400 · chi-square 26.13, 2 df, p = 2.11e-06\n"
        "\n"
        "sources:\n"
        "  thumbs_up  36  90.0%  most items from one feedback source\n"
        "  curated     4  10.0%\n")
    run = _mw(db, "evalset", "compare", digest, "--until", "2026-03-03T12:00:00Z", "--window",
              "2d", "--by", "topic", "--json")
    # three segments judged instead of six: Holm's adjustment is smaller, api is flagged
    under = orjson.loads(run.stdout)["under_represented"]
    assert [u["segment"] for u in under] == [{"topic": "api"}, {"topic": "sso"}]
    assert all(u["p_value"] < u["adjusted_p_value"] <= 0.01 for u in under)
    (db.tmp / "modelward.toml").write_text("[check.MW303]\nmin_traffic_share = 0.35\n")
    run = _mw(db, "evalset", "compare", digest, "--until", "2026-03-03T12:00:00Z", "--by",
              "tier", "--json")
    assert run.exit_code == 0, run.output
    doc = orjson.loads(run.stdout)
    assert doc["evalset"] == {"ref": digest, "digest": digest,
                              "label": f"support-evals@v2 ({digest[:19]}…)"}
    assert [d["by"] for d in doc["dimensions"]] == [["tier"]]
    assert doc["under_represented"] == [] and doc["dominant_sources"] == ["thumbs_up"]
    assert doc["thresholds"] == {"min_traffic_share": 0.35, "min_ratio": 0.5, "alpha": 0.01,
                                 "max_source_share": 0.5}


def test_compare_command_reads_a_file_and_refuses_what_is_not_an_eval_set(db):
    traffic(db.store, {("free", "api"): 10})
    f = db.tmp / "tiny.jsonl"
    f.write_bytes(jsonl([{"input": "x", "segments": {"tier": "free", "topic": "api"}}]))
    run = _mw(db, "evalset", "compare", str(f), "--until", "2026-03-03T12:00:00Z")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[:2] == [
        f"eval set {f}: 1 items, 0 linked to decisions",
        "traffic: 10 decisions from 2026-02-01T12:00:00Z to 2026-03-03T12:00:00Z"]
    assert "  nothing to test (one category, or no traffic)" in run.stdout
    model = artifacts.register_bytes(db.store, "model", b"w", name="m").artifact.digest
    run = _mw(db, "evalset", "compare", model)
    assert run.exception.message == f"EVALSET: {model} is a model, not an evalset"
    run = _mw(db, "evalset", "compare", "no/such/thing")
    assert run.exception.message == "EVALSET: 'no/such/thing' is not a file, a digest or an alias"
    run = _mw(db, "evalset", "compare", "sha256:" + "0" * 64)
    assert isinstance(run.exception, UnknownArtifactError)
    run = _mw(db, "evalset", "compare", str(f), "--window", "0s")
    assert run.exception.message == "--window: must be longer than 0, got '0s'"
