"""The shipped sentinel set and probe files."""

from __future__ import annotations

import orjson
import pytest

from modelward.errors import ValidationError
from modelward.retrieval.probes import SHIPPED, load_probes


def test_shipped_sentinels_are_varied_in_length_language_and_domain():
    rows = [orjson.loads(line) for line in SHIPPED.read_text("utf-8").splitlines()]
    probes = load_probes()
    assert len(probes) == len(rows) >= 64
    assert probes.source == "shipped:sentinels-v1"
    assert len({r["lang"] for r in rows} - {"mixed"}) >= 6
    assert {"code", "legal", "medical", "casual", "numbers", "support"} <= {r["domain"]
                                                                           for r in rows}
    words = sorted(len(r["text"].split()) for r in rows)
    assert words[0] <= 2 and words[-1] >= 40  # from a word or two to a paragraph
    assert len(set(probes.texts)) == len(probes.texts)
    assert load_probes().digest == probes.digest  # stable


def test_a_probe_file_of_lines_jsonl_or_json_strings(tmp_path):
    plain = tmp_path / "probes.txt"
    plain.write_text("alpha beta\n\ngamma\n  delta epsilon\n")
    p = load_probes(plain)
    assert (p.ids, p.texts) == (["p001", "p002", "p003"], ["alpha beta", "gamma",
                                                           "  delta epsilon"])
    jl = tmp_path / "probes.jsonl"
    jl.write_text('{"id": "a", "text": "alpha beta"}\n"gamma"\n{"text": "  delta epsilon"}\n')
    q = load_probes(jl)
    assert (q.ids, q.texts) == (["a", "p002", "p003"], p.texts)
    assert q.digest != p.digest  # ids are part of the set


@pytest.mark.parametrize("content, message", [
    ("one\ntwo\n", "holds 2 probes; a fingerprint needs at least 3"),
    ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\nz\n', "line 2: --probes: "),
    ('{"text": 3}\nb\nc\n', 'line 1: --probes: '),
    ('{"text": \nb\nc\n', "is not valid JSON"),
])
def test_bad_probe_files_name_the_problem(tmp_path, content, message):
    f = tmp_path / "p.jsonl"
    f.write_text(content)
    with pytest.raises(ValidationError) as exc:
        load_probes(f)
    assert message in exc.value.message and exc.value.field == "--probes"


def test_a_missing_probe_file_is_an_error(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        load_probes(tmp_path / "nope.txt")
