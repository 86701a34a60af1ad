"""Which texts a small eval set's contamination scan treats as template, measured.

Small eval sets (8-59 items) where half the items carry one instruction and half another,
and a passage of 60 words is shared by 3-6 items (a reading-comprehension set). The pool
holds a blog post quoting the passage and a prompt carrying both instructions. For each
rule "text shared by more than T(n) items is template", one JSON line: how many of the
passage's items are found in the blog post (recall of a leak), and how many items are
reported because of the prompt's instructions (false hits). Run:

    python bench/contamination_template.py [SETS]
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace

import orjson

from modelward.evals.contamination.corpus import texts_source
from modelward.evals.contamination.report import default_template_items
from modelward.evals.contamination.scan import Params, scan
from modelward.evals.harness.evalsets import EvalItem

A = ("Read the passage below carefully and answer the multiple choice question that follows "
     "it using one letter")
B = ("You are a careful assistant. Think step by step before giving your final short answer "
     "to the user")
RULES = {
    "5% of the set, at least 2, at most 10 (before)": lambda n: min(10, max(2, n // 20)),
    "a fifth, at least 3, at most 10": lambda n: min(10, max(3, n // 5)),
    "a quarter, at least 5, at most 10": lambda n: min(10, max(5, n // 4)),
    "a third, at least 3, at most 10 (default)": default_template_items,
    "half, at least 2, at most 10": lambda n: min(10, max(2, n // 2)),
}


def case(seed: int) -> tuple[list[EvalItem], set[str], str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    n, k = rng.choice([8, 12, 20, 30, 40, 59]), rng.choice([3, 4, 5, 6])
    passage = " ".join(rng.sample(vocab, 60))
    items = [EvalItem(f"q{i}", f"{A if i < n // 2 else B} {passage if i < k else ''} "
                               + " ".join(rng.sample(vocab, 25))) for i in range(n)]
    return items, {f"q{i}" for i in range(k)}, passage


def main(sets: int = 60) -> None:
    for name, rule in RULES.items():
        leaked = found = false = 0
        for seed in range(sets):
            items, shared, passage = case(seed)
            pool = texts_source("pool", [("blog", f"Some blog post. {passage} More words."),
                                         ("prompt", f"{A}\n{B}\nfoo bar")])
            report = scan(items, [pool], params=replace(Params(),
                                                        template_items=rule(len(items))))
            hits = {h.item_id: {m.locator for m in h.matches} for h in report.contaminated}
            leaked += len(shared)
            found += sum(1 for q in shared if "blog" in hits.get(q, ()))
            false += sum(1 for locs in hits.values() if "prompt" in locs)
        print(orjson.dumps({"rule": name, "sets": sets, "leaked_items": leaked,
                            "leaked_found": found, "recall": round(found / leaked, 3),
                            "items_falsely_hit": false}).decode(), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
