"""MW302 eval-contamination: configured (eval set, source) pairs and eval runs' prompts."""

from __future__ import annotations

import orjson
import pytest

from modelward.errors import ConfigError
from modelward.evals.harness.run import EvalSpec, Harness
from modelward.guards import run_guard
from modelward.settings import Settings

from .builders import NOW, T0, move, put

PROD = "prompt/support@production"
Q = {"q-1": "What is the boiling point of water at sea level in degrees Celsius?",
     "q-2": "Who wrote the play Hamlet and in which year was it first performed on stage?",
     "q-3": "Which planet in our solar system has the largest number of known moons today?",
     "q-4": "How many bones are there in the body of an adult human being on average?"}


def reply(prompt, *, model, item):
    """A runner for the harness: the answer does not matter here."""
    return "no idea"


def _evalset(path) -> None:
    path.write_bytes(b"".join(
        orjson.dumps({"id": k, "input": {"question": v}, "expected": "x"}) + b"\n"
        for k, v in Q.items()))


def _prompt(store, few_shot: list[str], version: str) -> str:
    payload = {"template": "{% for ex in few_shot %}Q: {{ ex.question }}\nA: {{ ex.answer }}\n"
                           "{% endfor %}Q: {{ question }}\nA:",
               "few_shot": [{"question": q, "answer": "…"} for q in few_shot]}
    return put(store, "prompt", orjson.dumps(payload), "support", version)


def _settings(ledger, tmp_path, toml: str) -> Settings:
    path = tmp_path / "modelward.toml"
    path.write_text(toml)
    return Settings({"home": ledger.settings.home,
                     "database_url": ledger.settings.database_url}, config_path=path)


PAIRS = """
[[contamination.pairs]]
evalset = "evals/support.jsonl"
against = ["prompt/support@production", "data/pool.jsonl"]
"""


@pytest.fixture
def world(ledger, tmp_path):
    """An eval set on disk, a production prompt whose few-shot examples are clean, and a
    pool of documents with no eval item in it."""
    (tmp_path / "evals").mkdir()
    (tmp_path / "data").mkdir()
    _evalset(tmp_path / "evals" / "support.jsonl")
    (tmp_path / "data" / "pool.jsonl").write_text(
        '{"id": "p1", "text": "How do I reset my password?"}\n'
        '{"id": "p2", "text": "Our refund policy lasts thirty days from the day of purchase."}\n')
    clean = _prompt(ledger.store, ["How do I reset my password on the support site?"], "37")
    move(ledger.store, PROD, clean, T0)
    return {"clean": clean, "settings": _settings(ledger, tmp_path, PAIRS)}


def test_MW302_fires_when_few_shot_examples_are_eval_items(ledger, world, findings, tmp_path):
    leaky = _prompt(ledger.store, [Q["q-2"], "How do I reset my password?"], "38")
    move(ledger.store, PROD, leaky, T0 + 60_000_000)
    with open(tmp_path / "data" / "pool.jsonl", "a") as fh:
        fh.write(orjson.dumps({"id": "p3", "text": f"Quiz night. {Q['q-4']} Answers below."})
                 .decode() + "\n")
    found = findings("MW302", settings=world["settings"])
    assert [(f.code, f.severity, f.subject) for f in found] == [
        ("MW302", "error", "data/pool.jsonl"), ("MW302", "error", PROD)]
    pool, prompt = found
    assert prompt.message == (
        f"1 of 4 items of eval set evals/support.jsonl appear in {PROD} (support@38 "
        f"({leaky[:19]}…)): q-2 (exact, few_shot[0])")
    assert prompt.evidence["source_digest"] == leaky
    assert prompt.evidence["matches"] == [{
        "item": "q-2", "documents": 1, "method": "exact", "score": 1.0,
        "locator": "few_shot[0]", "doc_id": None, "span": Q["q-2"].rstrip("?")}]
    assert pool.message == ("1 of 4 items of eval set evals/support.jsonl appear in "
                            "data/pool.jsonl: q-4 (containment, data/pool.jsonl:3)")
    assert pool.evidence["by_method"] == {"exact": 0, "near-duplicate": 0, "containment": 1,
                                          "ngram": 0}
    # the fingerprint names the pair, not today's counts
    with open(tmp_path / "data" / "pool.jsonl", "a") as fh:
        fh.write(orjson.dumps({"text": Q["q-1"]}).decode() + "\n")
    again = findings("MW302", settings=world["settings"])
    assert again[0].evidence["contaminated"] == 2
    assert again[0].fingerprint == pool.fingerprint


def test_MW302_clean_when_prompt_and_pool_hold_no_eval_item(world, findings):
    assert findings("MW302", settings=world["settings"]) == []


def test_MW302_resolves_the_prompt_alias_as_it_stood_at_now(ledger, world, findings):
    leaky = _prompt(ledger.store, [Q["q-1"]], "39")
    move(ledger.store, PROD, leaky, NOW + 60_000_000)  # after the check's now
    assert findings("MW302", settings=world["settings"]) == []
    assert len(findings("MW302", settings=world["settings"], now=NOW + 120_000_000)) == 1


def test_MW302_min_items_and_pair_options(ledger, world, findings, tmp_path):
    leaky = _prompt(ledger.store, [Q["q-1"], Q["q-3"]], "38")
    move(ledger.store, PROD, leaky, T0 + 60_000_000)
    assert len(findings("MW302", settings=world["settings"])) == 1
    assert findings("MW302", settings=world["settings"], min_items=3) == []
    only_ngram = _settings(ledger, tmp_path, PAIRS + 'methods = ["ngram"]\nngram = 20\n')
    assert findings("MW302", settings=only_ngram) == []  # both items are shorter than 20 words


def test_MW302_configuration_errors_name_the_pair(ledger, world, findings, tmp_path):
    missing = _settings(ledger, tmp_path, PAIRS.replace("data/pool.jsonl", "data/gone.jsonl"))
    with pytest.raises(ConfigError, match=r"contamination\.pairs\[1\]\.against "
                                          r"'data/gone\.jsonl': 'data/gone\.jsonl' is not"):
        findings("MW302", settings=missing)
    bad = _settings(ledger, tmp_path, PAIRS + "window = 3\n")
    with pytest.raises(ConfigError, match=r"contamination\.pairs\[1\]: unknown key 'window'"):
        findings("MW302", settings=bad)
    with pytest.raises(ConfigError, match="min_items"):
        findings("MW302", settings=world["settings"], min_items=0)


def _harness_run(ledger, tmp_path):
    if not (tmp_path / "qa.jsonl").exists():
        _evalset(tmp_path / "qa.jsonl")
    worker = Harness(ledger.store, EvalSpec(
        evalset=str(tmp_path / "qa.jsonl"), prompt=PROD, model="chat/v1",
        runner="tests.guards.test_mw302_eval_contamination:reply"))
    return worker.run()


def test_MW302_fires_when_an_eval_runs_prompts_embed_other_eval_items(ledger, tmp_path):
    store = ledger.store
    leaky = _prompt(store, [Q["q-3"]], "40")  # few-shot drawn from the eval set itself
    move(store, PROD, leaky, T0)
    move(store, "chat/v1", put(store, "model", b"weights", "chat", "v1"), T0)
    run = _harness_run(ledger, tmp_path)
    [f] = run_guard(store, ledger.settings, "MW302")
    assert f.subject == PROD
    assert f.message == (
        f"eval run {run.id} scored support@40 ({leaky[:19]}…) on qa.jsonl "
        f"({run.evalset_digest[:19]}…): the rendered prompts embed 1 of its 4 items: "
        "q-3 in 3 prompts (containment)")
    assert f.evidence["run_id"] == run.id and f.evidence["embedded"] == 1
    assert f.evidence["matches"][0]["locator"] == "prompt of q-1"
    assert f.evidence["matches"][0]["documents"] == 3


def test_MW302_clean_when_each_rendered_prompt_holds_only_its_own_item(ledger, tmp_path):
    store = ledger.store
    move(store, PROD, _prompt(store, ["How do I reset my password?"], "41"), T0)
    move(store, "chat/v1", put(store, "model", b"weights", "chat", "v1"), T0)
    _harness_run(ledger, tmp_path)
    assert run_guard(store, ledger.settings, "MW302") == []
    runs_off = _settings(ledger, tmp_path, "[contamination]\nruns = false\n")
    leaky = _prompt(store, [Q["q-3"]], "42")
    move(store, PROD, leaky, T0 + 60_000_000)
    _harness_run(ledger, tmp_path)
    assert len(run_guard(store, ledger.settings, "MW302")) == 1
    assert run_guard(store, runs_off, "MW302") == []
