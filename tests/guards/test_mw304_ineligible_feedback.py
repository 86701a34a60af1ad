"""MW304 ineligible-feedback."""

from __future__ import annotations

import pytest

from modelward.errors import ConfigError
from modelward.evals.curation.curate import curate
from modelward.evals.curation.policy import default_policy
from modelward.ledger import artifacts
from modelward.ledger import decisions as ledger_decisions
from modelward.ledger import feedback as ledger_feedback

from ..evals.mix import feedback_scenario, fid

EVERY = [fid(n) for n in range(1, 13)]


def _dataset(store, content: bytes, feedback_ids, *, parents=(), meta=None) -> str:
    """A dataset built outside `modelward curate` (a notebook) and linked by hand."""
    digest = artifacts.register_bytes(store, "dataset", content, name="sft-notebook",
                                      parents=parents, meta=meta).artifact.digest
    with store.write() as conn:
        ledger_feedback.link_dataset(conn, digest, feedback_ids)
    return digest


def _policy(store, text: bytes, name: str = "sft-default") -> str:
    return artifacts.register_bytes(store, "policy", text, name=name).artifact.digest


def test_MW304_fires_for_a_dataset_of_every_thumbs_down_with_a_correction(ledger, findings):
    feedback_scenario(ledger.store)
    pol = _policy(ledger.store, default_policy().raw)
    ds = _dataset(ledger.store, b"exported\n", EVERY, parents=[(pol, "policy")])
    [f] = findings("MW304")
    subject = f"sft-notebook ({ds[:19]}…)"
    assert (f.subject, f.severity) == (subject, "error")
    assert f.message == (
        f"{subject} holds 10 of 12 feedback events that policy sft-default ({pol[:19]}…) "
        "excludes: 2 no correction, 1 employee author, 1 decision text erased, 1 duplicate "
        "input, 1 intent style, 1 intent unhelpful, 1 no decision text stored, 1 surface "
        "internal, 1 surface staging")
    assert f.evidence == {
        "dataset": ds, "policy": pol, "policy_name": "sft-default", "policy_source": "lineage",
        "feedback": 12, "excluded": 10,
        "reasons": {"no_correction": 2, "author_kind:employee": 1, "decision_text_erased": 1,
                    "duplicate": 1, "intent:style": 1, "intent:unhelpful": 1,
                    "no_decision_text": 1, "surface:internal": 1, "surface:staging": 1},
        "examples": {"no_correction": [fid(7), fid(12)], "author_kind:employee": [fid(5)],
                     "decision_text_erased": [fid(10)], "duplicate": [fid(8)],
                     "intent:style": [fid(3)], "intent:unhelpful": [fid(11)],
                     "no_decision_text": [fid(9)], "surface:internal": [fid(4)],
                     "surface:staging": [fid(6)]}}
    [one] = findings("MW304", examples=1)
    assert one.evidence["examples"]["no_correction"] == [fid(7)]
    assert one.fingerprint == f.fingerprint  # examples are not identity
    with pytest.raises(ConfigError, match="examples"):
        findings("MW304", examples=0)


def test_MW304_clean_for_what_curate_built(ledger, fleet, findings, tmp_path):
    feedback_scenario(ledger.store)
    res = curate(ledger.store, default_policy(), tmp_path / "sft")
    assert res.dataset and findings("MW304") == []


def test_MW304_clean_on_a_realistic_ledger(fleet, findings):
    assert findings("MW304") == []


def test_MW304_judges_a_dataset_naming_no_policy_by_the_default(ledger, findings):
    feedback_scenario(ledger.store)
    ds = _dataset(ledger.store, b"x\n", [fid(1), fid(2), fid(3)])
    [f] = findings("MW304")
    assert f.message == (f"sft-notebook ({ds[:19]}…) holds 1 of 3 feedback events that policy "
                         "sft-default (the default; the dataset names no policy) excludes: "
                         "1 intent style")
    assert (f.evidence["policy"], f.evidence["policy_source"]) == (default_policy().digest,
                                                                   "default")


def test_MW304_reads_a_policy_named_in_meta_and_its_own_rules(ledger, findings):
    feedback_scenario(ledger.store)
    lenient = _policy(ledger.store, b'intents = ["incorrect", "unsafe", "style"]\n', "lenient")
    _dataset(ledger.store, b"x\n", [fid(1), fid(2), fid(3)], meta={"policy_digest": lenient})
    assert findings("MW304") == []  # style is admitted by its own policy
    _dataset(ledger.store, b"y\n", [fid(1), fid(4)], meta={"policy_digest": lenient})
    [f] = findings("MW304")
    assert (f.evidence["policy_name"], f.evidence["policy_source"], f.evidence["reasons"]) == (
        "lenient", "meta", {"intent:test": 1})


def test_MW304_fires_when_text_is_erased_after_curation_or_a_link_names_no_feedback(
        ledger, findings, tmp_path):
    feedback_scenario(ledger.store)
    res = curate(ledger.store, default_policy(), tmp_path / "sft")
    assert findings("MW304") == []
    ledger_decisions.erase_subject(ledger.store, "s0")  # the person behind decision 0
    [f] = findings("MW304")
    assert (f.evidence["dataset"], f.evidence["reasons"], f.evidence["examples"]) == (
        res.dataset, {"decision_text_erased": 1}, {"decision_text_erased": [fid(1)]})
    ghost = "01890000-0000-7000-8000-00000000ffff"
    with ledger.store.write() as conn:
        ledger_feedback.link_dataset(conn, res.dataset, [ghost])
    [f] = findings("MW304")
    assert f.evidence["reasons"] == {"decision_text_erased": 1, "unknown_feedback": 1}
    assert f.evidence["examples"]["unknown_feedback"] == [ghost]
    assert "1 feedback not in the ledger" in f.message


def test_MW304_reports_a_policy_it_cannot_read(ledger, findings):
    feedback_scenario(ledger.store)
    pol = _policy(ledger.store, b'intents = ["incorrect"]\n', "strict")
    broken = _policy(ledger.store, b"intents = [\n", "broken")
    gone = _dataset(ledger.store, b"a\n", [fid(1)], parents=[(pol, "policy")])
    bad = _dataset(ledger.store, b"b\n", [fid(1)], parents=[(broken, "policy")])
    ledger.store.blobs.delete(pol)
    found = {f.evidence["dataset"]: f for f in findings("MW304")}
    assert found[gone].message == (
        f"cannot judge sft-notebook ({gone[:19]}…): its policy strict ({pol[:19]}…) has no "
        "readable payload (unregistered, missing or corrupt)")
    assert found[bad].evidence["problem"].startswith(
        "is not a valid policy (policy: policy sha256:")
