"""Built-in and custom scorers, and runner URLs (no database needed)."""

import pytest

from modelward.endpoints import chat_completions_url, parse_runner
from modelward.errors import ValidationError
from modelward.evals.harness.scorers import ScoreError, number_in, parse_scorer, parse_scorers


def score(spec, output, expected):
    return parse_scorer(spec).score(output, {"id": "x", "expected": expected})


@pytest.mark.parametrize("spec, output, expected, result", [
    ("exact", "  Paris\n", "Paris", (1.0, True)),
    ("exact", "paris", "Paris", (0.0, False)),
    ("exact", "42", 42, (1.0, True)),
    ("contains", "The capital is Paris.", "Paris", (1.0, True)),
    ("contains", "Paris, then Lyon", ["Lyon", "Paris"], (1.0, True)),
    ("contains", "Paris only", ["Lyon", "Paris"], (0.0, False)),
    ("regex", "Order #A-1234 shipped", r"#[A-Z]-\d{4}", (1.0, True)),
    ("regex", "no order", r"#[A-Z]-\d{4}", (0.0, False)),
    ("numeric", "4", "4", (1.0, True)),
    ("numeric", "The total is 1,204.50 dollars", 1204.5, (1.0, True)),
    ("numeric", "about 3.14", 3.14159, (0.0, False)),
    ("numeric:0.01", "about 3.14", 3.14159, (1.0, True)),
    ("numeric:0.01", "-7", -7.005, (1.0, True)),
    ("json_field:answer.total", '{"answer": {"total": 12}}', 12, (1.0, True)),
    ("json_field:answer.total", '{"answer": {"total": 13}}', 12, (0.0, False)),
    ("json_field:items.1.name", '```json\n{"items": [{"name": "a"}, {"name": "b"}]}\n```', "b",
     (1.0, True)),
    ("json_field:ok", '{"ok": true}', True, (1.0, True)),
])
def test_builtin_scorers(spec, output, expected, result):
    assert score(spec, output, expected) == result


@pytest.mark.parametrize("spec, output, expected, message", [
    ("exact", "x", None, "the item has no expected value"),
    ("regex", "x", "(unclosed", "expected is not a valid regular expression"),
    ("numeric", "no digits here", 4, "the output holds no number"),
    ("numeric", "4", "four", "expected 'four' is not a number"),
    ("json_field:a.b", "not json", 1, "the output is not JSON"),
    ("json_field:a.b", '{"a": {"c": 1}}', 1, "the output has no field a.b"),
    ("json_field:a.5", '{"a": [1]}', 1, "the output has no field a.5"),
])
def test_a_scorer_that_cannot_judge_says_why(spec, output, expected, message):
    with pytest.raises(ScoreError, match=message.replace("(", r"\(")):
        score(spec, output, expected)


def test_number_in_takes_the_whole_output_or_its_last_number():
    assert number_in(" 1,000 ") == 1000.0
    assert number_in("2 apples and 3.5e2 pears") == 350.0
    assert number_in("-.5") == -0.5


def _ratio(output, item):
    return 0.7


def _flag(output, item):
    return output == "yes"


def _junk(output, item):
    return "great"


def test_custom_scorers():
    assert parse_scorer("tests.evals.harness.test_harness_scorers:_ratio").score("o", {}) == (0.7, True)
    assert parse_scorer("tests.evals.harness.test_harness_scorers:_ratio@0.8").score("o", {}) == (
        0.7, False)
    assert parse_scorer("tests.evals.harness.test_harness_scorers:_flag").score("yes", {}) == (1.0, True)
    with pytest.raises(ScoreError, match="returned 'great'; a scorer returns a number or a bool"):
        parse_scorer("tests.evals.harness.test_harness_scorers:_junk").score("o", {})


@pytest.mark.parametrize("spec, message", [
    ("bleu", "--scorer: unknown scorer 'bleu'"),
    ("exact:1", "--scorer: unknown scorer 'exact:1'"),
    ("numeric:-1", "--scorer: numeric tolerance must be a number >= 0, got '-1'"),
    ("numeric:close", "--scorer: numeric tolerance must be a number >= 0, got 'close'"),
    ("json_field", "--scorer: json_field needs a field path, got 'json_field'"),
    ("json_field:a..b", "--scorer: json_field needs a field path"),
    ("tests.evals.harness.test_harness_scorers:_ratio@2", "the pass mark after @ must be a number in"),
    ("tests.evals.harness.test_harness_scorers:nothing", "has no callable 'nothing'"),
])
def test_bad_scorers_are_named(spec, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")) as info:
        parse_scorer(spec)
    assert info.value.field == "--scorer"


def test_exact_is_the_default_scorer():
    assert [s.name for s in parse_scorers(None)] == ["exact"]


@pytest.mark.parametrize("url, endpoint", [
    ("http://localhost:8000/v1", "http://localhost:8000/v1/chat/completions"),
    ("http://localhost:8000/v1/", "http://localhost:8000/v1/chat/completions"),
    ("https://llm.internal", "https://llm.internal/v1/chat/completions"),
    ("https://llm.internal/openai/v1/chat/completions",
     "https://llm.internal/openai/v1/chat/completions"),
])
def test_runner_urls(url, endpoint):
    assert chat_completions_url(url) == endpoint
    assert parse_runner(url).url == endpoint
