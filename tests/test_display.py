"""The display vocabulary (modelward.display): one way to show a digest, a count, a share,
a span, a size, and ledger text on a terminal."""

from __future__ import annotations

import orjson
import pytest

from modelward.display import (
    duration,
    inert,
    inert_json,
    number,
    percent,
    plural,
    short_digest,
    size,
)
from modelward.timefmt import parse_duration

DIGEST = "sha256:" + "ab" * 32


def test_short_digest_has_one_behaviour_for_each_case():
    assert short_digest(DIGEST) == "sha256:abababababab…"
    assert short_digest(None) == short_digest("") == "-"
    assert short_digest(None, missing="—") == "—"
    assert short_digest("openai:gpt-4o-2024-08-06") == "openai:gpt-4o-2024-08-06"
    assert short_digest("sha256:abc") == "sha256:abc"


def test_counts_and_plurals():
    assert plural(1, "decision") == "1 decision"
    assert plural(0, "decision") == "0 decisions"
    assert plural(1204, "decision") == "1,204 decisions"
    assert plural(2, "policy", "policies") == "2 policies"
    assert number(1234567) == "1,234,567"


def test_percent_duration_and_size():
    assert percent(0.375) == "37.5%" and percent(None) == "-" and percent(1) == "100.0%"
    assert [duration(parse_duration(s)) for s in ("30d", "5m", "90s", "36h", "250ms", "0s")] == [
        "30d", "5m", "90s", "36h", "250ms", "0s"]
    assert duration(1) == "1us"
    assert [size(n) for n in (0, 1023, 1024, 1536, 5 * 1024**3, 3 * 1024**5, None)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 GiB", "3072.0 TiB", "?"]


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[31mred", "\\x1b[31mred"),              # ANSI CSI
    ("\x1b]8;;http://x/\x07a", "\\x1b]8;;http://x/\\x07a"),  # OSC 8 hyperlink
    ("\x9b2J\x9d0;t\x9c", "\\x9b2J\\x9d0;t\\x9c"),   # 8-bit CSI, OSC, ST
    ("abc\u202efed\u202c", "abc\\u202efed\\u202c"),  # right-to-left override
    ("\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c"),
    ("a\nb\tc\rd\x7f", "a\\nb\\tc\\rd\\x7f"),
    ("\u2028\u2029", "\\u2028\\u2029"),
    ("plain ünïcødé – ok […]", "plain ünïcødé – ok […]"),
])
def test_inert_shows_controls_as_visible_escapes(raw, shown):
    assert inert(raw) == shown


def test_inert_text_keeps_its_own_lines():
    assert inert("one\n\ttwo\x1b[2A", lines=True) == "one\n\ttwo\\x1b[2A"
    assert inert(42) == "42"


def test_inert_json_is_the_same_json_value():
    value = {"name": "x\x1b[1A\x9b\u202e\u2066\u2028\x7f\n", "n": 1}
    text = inert_json(orjson.dumps(value).decode())
    assert orjson.loads(text) == value
    assert not any(c in text for c in "\x1b\x9b\u202e\u2066\u2028\x7f\n")
