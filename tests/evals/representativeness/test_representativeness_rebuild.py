"""`modelward evalset rebuild`: stratified samples of production decisions, registered
as eval sets with lineage, on every backend."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.digest import of_bytes
from modelward.errors import ValidationError
from modelward.evals.harness.evalsets import load_evalset_file
from modelward.evals.representativeness import compare as rep
from modelward.evals.representativeness.sampling import allocate, rebuild
from modelward.ledger import artifacts
from modelward.ledger import decisions as ledger_decisions
from tests.evals.mix import CELLS, NOW, T0, traffic


def test_allocation_is_proportional_with_largest_remainders():
    assert allocate(40, CELLS) == {c: n // 25 for c, n in CELLS.items()}
    assert allocate(7, {("a",): 5, ("b",): 3, ("c",): 2}) == {("a",): 4, ("b",): 2, ("c",): 1}
    # equal remainders: the larger cell first, then the cell order
    assert allocate(10, {("b",): 1, ("a",): 1, ("c",): 1}) == {("a",): 4, ("b",): 3, ("c",): 3}
    assert allocate(5, {("x",): 2, ("y",): 3}) == {("x",): 2, ("y",): 3}
    assert allocate(3, {("x",): 0, ("y",): 9}) == {("x",): 0, ("y",): 3}


def test_allocation_moves_what_a_capped_cell_cannot_take_to_the_others():
    weights = {("a",): 5, ("b",): 3, ("c",): 2}
    assert allocate(10, weights, {("a",): 2, ("b",): 100, ("c",): 100}) == {
        ("a",): 2, ("b",): 5, ("c",): 3}
    assert allocate(100, weights, {("a",): 2, ("b",): 1, ("c",): 4}) == {
        ("a",): 2, ("b",): 1, ("c",): 4}
    assert allocate(10, weights, {("a",): 0, ("b",): 0, ("c",): 0}) == {
        ("a",): 0, ("b",): 0, ("c",): 0}


def _rebuild(store, tmp_path, **kw):
    kw.setdefault("size", 40)
    kw.setdefault("stratify", ["tier", "topic"])
    kw.setdefault("seed", 7)
    return rebuild(store, since=T0, until=NOW, window="2d", name="support-sampled",
                   out=tmp_path / kw.pop("file", "sampled.jsonl"), **kw)


def test_rebuild_draws_each_stratum_in_proportion_and_links_every_item(ledger, tmp_path):
    ids = traffic(ledger.store)
    res = _rebuild(ledger.store, tmp_path)
    items = load_evalset_file(tmp_path / "sampled.jsonl")
    assert len(items) == res.items == 40
    by_cell = {c: set(v) for c, v in ids.items()}
    counts = {c: 0 for c in CELLS}
    for it in items:
        cell = (it.segments["tier"], it.segments["topic"])
        assert it.decision_id in by_cell[cell] and it.id == it.decision_id
        assert it.source == "sampled" and it.expected is None
        assert it.input.startswith(f"{cell[0]} {cell[1]} question ")
        counts[cell] += 1
    assert counts == {c: n // 25 for c, n in CELLS.items()}
    assert [it.id for it in items] == sorted(it.id for it in items)
    with ledger.store.read() as conn:
        art = artifacts.get(conn, res.digest)
        comp = rep.compare(conn, items, since=T0, until=NOW)
    assert (art.kind, art.name) == ("evalset", "support-sampled")
    assert {k: v for k, v in art.meta.items() if k != "cells"} == {
        "method": "stratified-proportional", "window": "2d", "since": "2026-03-01T12:00:00Z",
        "until": "2026-03-03T12:00:00Z", "stratify": ["tier", "topic"], "seed": 7,
        "source_decisions": 1000, "eligible_decisions": 1000, "items": 40}
    assert art.meta["cells"][0] == {"segment": {"tier": "free", "topic": "billing"},
                                    "traffic": 300, "eligible": 300, "ideal": 12, "items": 12}
    assert [d.tvd for d in comp.dimensions] == [0.0, 0.0] and comp.linked == 40


def test_the_same_seed_draws_the_same_set_and_another_seed_another(ledger, tmp_path):
    traffic(ledger.store)
    first = _rebuild(ledger.store, tmp_path, file="a.jsonl")
    again = _rebuild(ledger.store, tmp_path, file="b.jsonl")
    other = _rebuild(ledger.store, tmp_path, file="c.jsonl", seed=8)
    assert (first.created, again.created, again.digest) == (True, False, first.digest)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert other.digest != first.digest and other.items == 40
    unseeded = _rebuild(ledger.store, tmp_path, file="d.jsonl", seed=None)
    assert 0 <= unseeded.seed < 2 ** 63 and unseeded.items == 40


def test_strata_whose_text_was_erased_fall_short_and_the_others_make_up_the_size(ledger,
                                                                                 tmp_path):
    traffic(ledger.store)
    for n in range(39):  # most enterprise customers had their text erased
        ledger_decisions.erase_subject(ledger.store, f"enterprise-{n}")
    res = _rebuild(ledger.store, tmp_path, size=100)
    got = {c.cell: (c.traffic, c.eligible, c.ideal, c.items) for c in res.cells}
    assert got == {("free", "billing"): (300, 300, 30, 40), ("free", "api"): (200, 200, 20, 27),
                   ("enterprise", "sso"): (200, 5, 20, 5),
                   ("pro", "billing"): (100, 100, 10, 13), ("pro", "api"): (100, 100, 10, 13),
                   ("enterprise", "billing"): (100, 2, 10, 2)}
    assert res.items == 100 and res.eligible == 707


def test_rebuild_refuses_what_cannot_be_drawn(ledger, tmp_path):
    traffic(ledger.store, {("free", "api"): 5}, text=False)
    with pytest.raises(ValidationError) as exc:
        _rebuild(ledger.store, tmp_path)
    assert exc.value.message == ("--window: no decision between 2026-03-01T12:00:00Z and "
                                 "2026-03-03T12:00:00Z has its input text stored "
                                 "(5 decisions in the window)")
    for kw, message in ((dict(size=0), "--size: must be at least 1, got 0"),
                        (dict(stratify=["tier", "tier"]), "--stratify: names a key twice"),
                        (dict(seed=-1), "--seed: must be a whole number from 0 to 2**64-1, "
                                        "got -1")):
        with pytest.raises(ValidationError) as exc:
            _rebuild(ledger.store, tmp_path, **kw)
        assert exc.value.message == message


# --- the command ---------------------------------------------------------------------------

@pytest.fixture
def db(cli_ledger):
    return cli_ledger


def test_rebuild_command_prints_the_strata_and_writes_NAME_jsonl(db):
    traffic(db.store)
    run = CliRunner().invoke(app, [*db.args, "evalset", "rebuild", "--size", "40", "--stratify",
                                   "tier,topic", "--window", "2d", "--until",
                                   "2026-03-03T12:00:00Z", "--name", "support/sampled",
                                   "--seed", "7"])
    assert run.exit_code == 0, run.output
    path = Path("support_sampled.jsonl")  # the test runs in its own directory
    digest = of_bytes(path.read_bytes())
    assert run.stdout == (
        "eval set support/sampled: 40 items from 1,000 decisions (2026-03-01T12:00:00Z to "
        "2026-03-03T12:00:00Z), seed 7\n"
        f"{digest} written to support_sampled.jsonl\n"
        "strata: traffic, share, items\n"
        "  tier=free, topic=billing        300  30.0%  12\n"
        "  tier=enterprise, topic=sso      200  20.0%   8\n"
        "  tier=free, topic=api            200  20.0%   8\n"
        "  tier=enterprise, topic=billing  100  10.0%   4\n"
        "  tier=pro, topic=api             100  10.0%   4\n"
        "  tier=pro, topic=billing         100  10.0%   4\n")
    run = CliRunner().invoke(app, [*db.args, "evalset", "rebuild", "--size", "3", "--window",
                                   "2d", "--until", "2026-03-03T12:00:00Z", "--name", "tiny",
                                   "--out", str(db.tmp / "sets" / "tiny.jsonl"), "--json"])
    assert run.exit_code == 0, run.output
    doc = orjson.loads(run.stdout)
    assert (doc["items"], doc["stratify"], doc["path"], doc["created"]) == (
        3, [], str(db.tmp / "sets" / "tiny.jsonl"), True)
    assert doc["cells"] == [{"segment": {}, "traffic": 1000, "eligible": 1000, "ideal": 3,
                             "items": 3}]


def test_rebuild_command_says_which_strata_fell_short(db):
    traffic(db.store)
    for n in range(39):
        ledger_decisions.erase_subject(db.store, f"enterprise-{n}")
    run = CliRunner().invoke(app, [*db.args, "evalset", "rebuild", "--size", "100",
                                   "--stratify", "tier,topic", "--window", "2d", "--until",
                                   "2026-03-03T12:00:00Z", "--name", "s", "--seed", "1"])
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[3:] == [
        "  tier=free, topic=billing        300  30.0%  40",
        "  tier=enterprise, topic=sso      200  20.0%   5  short 15: only 5 with stored text",
        "  tier=free, topic=api            200  20.0%  27",
        "  tier=enterprise, topic=billing  100  10.0%   2  short 8: only 2 with stored text",
        "  tier=pro, topic=api             100  10.0%  13",
        "  tier=pro, topic=billing         100  10.0%  13"]
