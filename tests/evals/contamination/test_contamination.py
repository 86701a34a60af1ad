"""The contamination engine: methods, normalisation, spans, batching, and a reference check
of the vectorised code against plain Python sets."""

from __future__ import annotations

import random

import numpy as np
import pytest

from modelward.errors import ConfigError, ValidationError
from modelward.evals.contamination import textindex
from modelward.evals.contamination.corpus import texts_source
from modelward.evals.contamination.scan import Params, load_config, scan, scan_rendered
from modelward.evals.harness.evalsets import EvalItem

Q1 = "What is the boiling point of water at sea level in degrees Celsius?"
Q2 = "Who wrote the play Hamlet and in which year was it first performed on stage?"
Q3 = ("The mitochondria is the powerhouse of the cell and produces most of the chemical "
      "energy needed to power the biochemical reactions of the cell")


def _items(*texts: str) -> list[EvalItem]:
    return [EvalItem(f"q{i}", t) for i, t in enumerate(texts, start=1)]


def _scan(items, docs, **kw):
    return scan(items, [texts_source("pool", [(f"doc{i}", t) for i, t in enumerate(docs)])],
                **kw)


def _found(report) -> dict[str, list[tuple[str, str, float]]]:
    return {hit.item_id: [(m.locator, m.method, m.score) for m in hit.matches]
            for hit in report.contaminated}


def test_normalisation_folds_case_punctuation_whitespace_and_unicode():
    assert textindex.normalize("  Hello,\tWORLD!!  foo_bar ") == "hello world foo bar"
    # NFKC (fullwidth letters, the fi ligature), casefold (ß -> ss)
    assert textindex.normalize("Ｆｕｌｌ ﬁne STRAẞE «quoted»") == "full fine strasse quoted"
    assert textindex.normalize("Ünïcödé — naïve café") == "ünïcödé naïve café"


def test_exact_match_after_normalisation_and_only_then():
    report = _scan(_items(Q1, Q2), [
        "what is the BOILING point of water, at sea level, in degrees celsius",  # exact
        "What is the freezing point of water at sea level in degrees Fahrenheit?",
        "Cats and dogs."])
    assert _found(report) == {"q1": [("doc0", "exact", 1.0)]}
    [hit] = report.contaminated
    assert hit.best.scores == {"exact": 1.0, "near-duplicate": 1.0, "containment": 1.0,
                               "ngram": 1.0}
    assert hit.best.span == "what is the BOILING point of water, at sea level, in degrees celsius"
    assert (hit.best.start, hit.best.end) == (0, len(hit.best.span))
    assert report.items == 2 and report.documents == 3


def test_near_duplicate_is_confirmed_by_the_exact_jaccard():
    words = Q3.split()  # 24 words, 20 5-grams
    appended = Q3 + " today"  # 20 of 21 shingles shared: J = 20/21
    swapped = " ".join(words[:21] + ["in"] + words[22:])  # 3 broken: J = 17/23
    report = _scan(_items(Q3), [appended, swapped])
    assert _found(report) == {"q1": [("doc0", "near-duplicate", round(20 / 21, 4)),
                                     ("doc1", "containment", 0.85)]}
    assert report.contaminated[0].matches[0].scores == {
        "near-duplicate": round(20 / 21, 4), "containment": 1.0, "ngram": 1.0}
    report = _scan(_items(Q3), [swapped], threshold=0.7, methods=("near-duplicate",))
    assert _found(report) == {"q1": [("doc0", "near-duplicate", round(17 / 23, 4))]}


def test_containment_finds_a_short_item_inside_a_long_document():
    host = " ".join(f"filler{i}" for i in range(400))
    doc = host[:1000] + " " + Q2 + " " + host[1000:]
    report = _scan(_items(Q2), [doc])
    [(locator, method, score)] = _found(report)["q1"]
    assert (locator, method, score) == ("doc0", "containment", 1.0)
    hit = report.contaminated[0].best
    assert hit.span == Q2.rstrip("?")
    assert doc[hit.start:hit.end] == hit.span
    assert hit.scores["ngram"] == 1.0 and "near-duplicate" not in hit.scores


def test_containment_share_is_the_share_of_the_items_shingles():
    words = Q3.split()
    cut = " ".join(words[:14] + ["INSERTED"] + words[14:])  # breaks 4 of 20 5-grams
    report = _scan(_items(Q3), ["intro text here " * 30 + cut], containment=0.8)
    assert _found(report) == {"q1": [("doc0", "containment", 0.8)]}
    report = _scan(_items(Q3), ["intro text here " * 30 + cut], containment=0.85,
                   methods=("containment",))
    assert report.clean


def test_ngram_overlap_counts_shared_13_grams():
    words = Q3.split()
    doc = "unrelated words " * 20 + " ".join(words[3:17]) + " more unrelated words"
    report = _scan(_items(Q3), [doc], methods=("ngram",))
    # the item has 12 13-grams; words 3..16 hold 2 of them
    assert _found(report) == {"q1": [("doc0", "ngram", round(2 / 12, 4))]}
    assert report.contaminated[0].best.span == " ".join(words[3:17])
    assert _scan(_items(Q3), [doc], methods=("ngram",), ngram=15).clean
    # n-grams shorter than the shingle are looked up directly
    short = _scan(_items(Q3), ["the chemical energy needed here"], ngram=3, shingle=5)
    assert _found(short) == {"q1": [("doc0", "ngram", round(2 / 21, 4))]}  # 21 distinct


def test_template_text_shared_by_many_items_does_not_make_an_ngram_match():
    template = "Read the passage below and answer the question that follows it:"
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(300)]
    items = [EvalItem(f"q{i}", f"{template} alpha beta " + " ".join(rng.sample(vocab, 12)))
             for i in range(30)]
    # a pool document with the template and the same two next words as every item
    doc = f"{template} alpha beta gamma delta epsilon"
    report = scan(items, [texts_source("pool", [("d", doc)])], methods=("ngram",))
    assert report.clean
    copied = scan(items, [texts_source("pool", [("d", items[7].text())])],
                  methods=("ngram",))
    assert [h.item_id for h in copied.contaminated] == ["q7"]


def test_a_passage_a_few_items_of_a_small_set_share_is_not_template():
    """20 items, each with one of two instructions; a 60-word passage shared by 4 of them
    leaked into a blog post. The passage's items are found; the instructions are not."""
    a = "Read the passage below carefully and answer the question that follows it using one word"
    b = "You are a careful assistant. Think step by step before giving your final short answer"
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(3000)]
    passage = " ".join(rng.sample(vocab, 60))
    items = [EvalItem(f"q{i}", f"{a if i < 10 else b} {passage if i < 4 else ''} "
                               + " ".join(rng.sample(vocab, 25))) for i in range(20)]
    pool = texts_source("pool", [("blog", f"A blog post. {passage} The end."),
                                 ("prompt", f"{a}\n{b}\nfoo bar")])
    report = scan(items, [pool])
    assert {h.item_id: sorted({m.locator for m in h.matches}) for h in report.contaminated} \
        == {f"q{i}": ["blog"] for i in range(4)}
    # the rule before: text shared by more than 2 items of a set under 60 was template
    assert scan(items, [pool], template_items=2).clean
    assert [Params().template_for(n) for n in (8, 20, 29, 30, 5000)] == [3, 6, 9, 10, 10]


def test_items_shorter_than_the_shingle_are_found_by_exact_match_only():
    report = _scan(_items("Name three colours", Q1), ["name THREE colours!",
                                                      "Quiz: name three colours please"])
    assert _found(report) == {"q1": [("doc0", "exact", 1.0)]}
    assert report.short_items == 1


def test_a_document_owned_by_the_item_is_not_a_match_for_it():
    src = texts_source("rendered", [("prompt of q1", f"Q: {Q1}", ["q1"]),
                                    ("prompt of q2", f"Example: {Q1}\nQ: {Q2}", ["q2"])])
    report = scan(_items(Q1, Q2), [src])
    assert _found(report) == {"q1": [("prompt of q2", "containment", 1.0)]}


def test_scan_rendered_ignores_each_prompts_own_item_and_its_copies():
    items = _items(Q1, Q2, Q2 + " Answer briefly")
    rendered = [("q1", f"Example: {Q2}\nQ: {Q1}"), ("q2", f"Q: {Q2}"),
                ("q3", f"Q: {Q2} Answer briefly")]
    report = scan_rendered(items, rendered, name="run")
    # q2 and q3 hold each other (q3 has 11 of its 13 5-grams in q2), so their prompts
    # holding one another is expected; q1's prompt holding them is not
    assert _found(report) == {"q2": [("prompt of q1", "containment", 1.0)],
                              "q3": [("prompt of q1", "containment", round(11 / 13, 4))]}


def test_matches_are_ranked_capped_and_all_counted():
    docs = [Q1] + [f"Intro {i}. {Q1} and then some other words follow" for i in range(6)]
    report = _scan(_items(Q1), docs, max_matches=3)
    [hit] = report.contaminated
    assert hit.documents == 7
    assert [(m.locator, m.method) for m in hit.matches] == [
        ("doc0", "exact"), ("doc1", "containment"), ("doc2", "containment")]


def test_results_do_not_depend_on_batch_boundaries():
    rng = random.Random(11)
    vocab = [f"v{i}" for i in range(400)]
    items = _items(*(" ".join(rng.choices(vocab, k=rng.randint(8, 40))) for _ in range(40)))
    docs = []
    for i in range(300):
        text = " ".join(rng.choices(vocab, k=rng.randint(1, 120)))
        if i % 7 == 0:
            text += " " + items[i % 40].input
        docs.append(text)
    big = _found(_scan(items, docs))
    small = _found(_scan(items, docs, batch_bytes=500))
    assert big == small and len(big) >= 20


def _ref_shingles(text: str, k: int) -> set:
    w = textindex.normalize(text).split()
    return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)}


def test_vectorised_scores_equal_a_plain_python_reference():
    rng = random.Random(5)
    vocab = [f"t{i}" for i in range(600)]
    texts = [" ".join(rng.choices(vocab, k=rng.randint(6, 50))) for _ in range(60)]
    items = _items(*texts)
    docs = []
    for i in range(400):
        base = texts[rng.randrange(60)].split()
        kind = i % 4
        if kind == 0:  # edited copy
            for _ in range(rng.randint(0, 3)):
                base.insert(rng.randrange(len(base) + 1), rng.choice(vocab))
        elif kind == 1:  # embedded
            base = rng.choices(vocab, k=rng.randint(0, 60)) + base + rng.choices(vocab, k=40)
        elif kind == 2:  # partial
            base = base[rng.randrange(len(base)):] + rng.choices(vocab, k=20)
        else:
            base = rng.choices(vocab, k=rng.randint(1, 80))
        docs.append(" ".join(base))
    report = _scan(items, docs, max_matches=1000)
    got = {(m.locator, hit.item_id): m.scores for hit in report.contaminated
           for m in hit.matches}
    expect_near, expect_cont, expect_ngram = {}, {}, {}
    for d, doc in enumerate(docs):
        b, bn = _ref_shingles(doc, 5), _ref_shingles(doc, 13)
        for it in items:
            a, an = _ref_shingles(it.input, 5), _ref_shingles(it.input, 13)
            key = (f"doc{d}", it.id)
            if a:
                inter = len(a & b)
                if inter / len(a | b) >= 0.8 - 1e-9:
                    expect_near[key] = round(inter / len(a | b), 4)
                if inter / len(a) >= 0.8 - 1e-9:
                    expect_cont[key] = round(inter / len(a), 4)
            if an and an & bn:
                expect_ngram[key] = round(len(an & bn) / len(an), 4)
    assert len(expect_cont) > 50 and len(expect_ngram) > 50 and len(expect_near) > 20
    assert {k: s["containment"] for k, s in got.items() if "containment" in s} == expect_cont
    assert {k: s["ngram"] for k, s in got.items() if "ngram" in s} == expect_ngram
    near = {k: s["near-duplicate"] for k, s in got.items() if "near-duplicate" in s}
    # LSH may miss a pair right at the threshold, never report a wrong one
    assert near.items() <= expect_near.items()
    assert len(near) >= 0.95 * len(expect_near)


def test_word_hashes_tell_equal_words_from_different_ones():
    words = ["a", "ab", "abcdefgh", "abcdefghi", "abcdefghij" * 3, "abcdefghij" * 3 + "k",
             "x" * 17, "x" * 16 + "y", "y" + "x" * 16, "ünï", "日本語"]
    batch = textindex.tokenize([" ".join(words), " ".join(reversed(words))])
    first, second = batch.words[:len(words)], batch.words[len(words):]
    assert len(set(first.tolist())) == len(words)
    assert np.array_equal(first, second[::-1])


def test_empty_documents_and_items_are_harmless():
    report = _scan(_items("", Q1), ["", "   ", "?!", Q1, ""])
    assert _found(report) == {"q2": [("doc3", "exact", 1.0)]}


@pytest.mark.parametrize("options, field", [
    ({"ngram": 0}, "ngram"), ({"threshold": 1.5}, "threshold"), ({"threshold": 0}, "threshold"),
    ({"containment": -1}, "containment"), ({"methods": ("exact", "fuzzy")}, "methods"),
    ({"methods": ()}, "methods"), ({"shingle": 65}, "shingle")])
def test_bad_scan_options_name_the_field(options, field):
    with pytest.raises(ValidationError) as exc:
        Params(**options)
    assert exc.value.field == field


def test_contamination_table_is_validated_with_the_key_named():
    cfg = load_config({"ngram": 8, "runs": False, "pairs": [
        {"evalset": "e.jsonl", "against": "pool.jsonl", "threshold": 0.9}]})
    [pair] = cfg.pairs
    assert (cfg.params.ngram, cfg.runs, pair.against, pair.params.threshold,
            pair.params.ngram) == (8, False, ("pool.jsonl",), 0.9, 8)
    with pytest.raises(ConfigError, match=r"unknown key contamination\.window"):
        load_config({"window": "1d"})
    with pytest.raises(ConfigError, match=r"contamination\.pairs\[1\]: unknown key 'source'"):
        load_config({"pairs": [{"evalset": "e", "against": ["p"], "source": "x"}]})
    with pytest.raises(ConfigError, match=r"pairs\[1\]\.against must be a non-empty list"):
        load_config({"pairs": [{"evalset": "e", "against": []}]})
    with pytest.raises(ConfigError, match=r"pairs\[2\]\.evalset is required"):
        load_config({"pairs": [{"evalset": "e", "against": ["p"]}, {"against": ["p"]}]})
    with pytest.raises(ConfigError, match=r"contamination\.threshold: must be a number"):
        load_config({"threshold": "high"})
    with pytest.raises(ConfigError, match=r"methods must be a list"):
        load_config({"methods": "exact"})
