"""Curation policies: the TOML format, its errors, and the judge's order of reasons."""

from __future__ import annotations

import pytest

from modelward.digest import of_bytes
from modelward.errors import ValidationError
from modelward.evals.curation.policy import (
    Judge,
    builtin_names,
    default_policy,
    load_policy,
    normalized,
    parse_policy,
    reason_label,
)


def _policy(text: str, name: str = "p"):
    return parse_policy(text.encode(), source="p.toml", default_name=name)


def test_the_shipped_default_policy_admits_customer_corrections_in_production():
    p = default_policy()
    assert builtin_names() == ["sft-default"]
    assert (p.name, p.surfaces, p.author_kinds, p.intents, p.require_correction, p.dedupe) == (
        "sft-default", ("production",), ("customer",), ("incorrect", "unsafe"), True, "input")
    assert p.source == "builtin:sft-default" and p.digest == of_bytes(p.raw)
    assert p.to_dict()["intents"] == ["incorrect", "unsafe"] and "raw" not in p.to_dict()


def test_an_empty_policy_admits_everything_with_text_and_dedupes_by_input():
    p = _policy("")
    assert (p.name, p.intents, p.require_correction, p.dedupe, p.rating_min) == (
        "p", ("incorrect", "unsafe", "unhelpful", "style", "test", "other", "unknown"), False,
        "input", None)


@pytest.mark.parametrize("text, message", [
    ("surface = ['production']", "surface: unknown key; known keys: name, description, "
     "surfaces, author_kinds, intents, exclude_authors, require_correction, "
     "min_correction_chars, min_comment_chars, rating_min, rating_max, dedupe (policy p.toml)"),
    ("surfaces = 'production'", "surfaces: must be a list of strings (policy p.toml)"),
    ("author_kinds = ['customer', 'bot']", "author_kinds: 'bot' is not one of customer, "
     "employee, system (policy p.toml)"),
    ("require_correction = 'yes'", "require_correction: must be true or false (policy p.toml)"),
    ("min_comment_chars = -1", "min_comment_chars: must be a whole number of characters >= 0, "
     "got -1 (policy p.toml)"),
    ("min_correction_chars = 2.5", "min_correction_chars: must be a whole number of characters "
     ">= 0, got 2.5 (policy p.toml)"),
    ("rating_min = 'low'", "rating_min: must be a number, got 'low' (policy p.toml)"),
    ("rating_min = 4\nrating_max = 1", "rating_min: is greater than rating_max (policy p.toml)"),
    ("dedupe = 'output'", "dedupe: 'output' is not one of none, input, input+correction "
     "(policy p.toml)"),
    ("name = ''", "name: must be a non-empty string (policy p.toml)"),
    ("exclude_authors = [1]", "exclude_authors: must be a list of strings (policy p.toml)"),
])
def test_policy_errors_name_the_key(text, message):
    with pytest.raises(ValidationError) as exc:
        _policy(text)
    assert exc.value.message == message
    assert exc.value.hint == "see docs/feedback.md for the policy format"


def test_a_policy_that_is_not_toml_or_not_found_is_refused(tmp_path):
    with pytest.raises(ValidationError, match=r"^policy: policy p.toml is not valid TOML"):
        _policy("surfaces = [")
    with pytest.raises(ValidationError) as exc:
        load_policy(tmp_path / "missing.toml")
    assert exc.value.message == (f"--policy: {tmp_path / 'missing.toml'} is neither a policy "
                                 "file nor a shipped policy")
    assert exc.value.hint == "shipped policies: sft-default"


def _row(**kw):
    row = dict(id="f", found_decision="d", surface="production", author_kind="customer",
               author=None, intent="incorrect", rating=None, correction="fixed", comment=None,
               erased_at=None, input_text="the question")
    row.update(kw)
    return row


def test_the_judge_gives_the_first_reason_in_a_fixed_order():
    judge = Judge(_policy("surfaces = ['production']\nauthor_kinds = ['customer']\n"
                          "intents = ['incorrect']\nrequire_correction = true\n"
                          "min_correction_chars = 3\nmin_comment_chars = 2\n"
                          "rating_max = 0\nexclude_authors = ['qa']"))
    assert judge(_row(id=None, surface=None)) == "unknown_feedback"
    assert judge(_row(found_decision=None, surface="staging")) == "unknown_decision"
    assert judge(_row(surface="staging", author_kind="employee")) == "surface:staging"
    assert judge(_row(author_kind="employee", intent="style")) == "author_kind:employee"
    assert judge(_row(author="qa", intent="style")) == "excluded_author"
    assert judge(_row(intent="style", rating=1)) == "intent:style"
    assert judge(_row(rating=None)) == "no_rating"
    assert judge(_row(rating=0.5, correction=None)) == "rating_out_of_range"
    assert judge(_row(rating=0, correction=" \n")) == "no_correction"
    assert judge(_row(rating=0, correction=" ab ")) == "correction_too_short"
    assert judge(_row(rating=0, comment=" x ")) == "comment_too_short"
    assert judge(_row(rating=0, comment="ok", erased_at=5, input_text=None)) == \
        "decision_text_erased"
    assert judge(_row(rating=0, comment="ok", input_text=None)) == "no_decision_text"
    assert judge(_row(rating=0, comment="ok", input_text="The  Question")) is None
    assert judge(_row(rating=0, comment="ok", input_text="the question\n")) == "duplicate"


def test_dedupe_keys_and_reason_labels():
    assert normalized("  Ｆｕｌｌ\tWIDTH  text\n") == "full width text"
    judge = Judge(_policy("dedupe = 'none'"))
    assert judge(_row()) is None and judge(_row()) is None
    judge = Judge(_policy("dedupe = 'input+correction'"))
    assert [judge(_row(correction=c)) for c in ("a", "A ", "b")] == [None, "duplicate", None]
    assert [reason_label(r) for r in ("surface:staging", "author_kind:employee", "intent:test",
                                      "duplicate", "something-new")] == [
        "surface staging", "employee author", "intent test", "duplicate input", "something-new"]
