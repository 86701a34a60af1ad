"""Contamination scans: modelward vs datasketch's MinHashLSH vs rensa, on planted copies.

An eval set of 5,000 items and a pool of 200,000 documents are generated (seeded, Zipfian
vocabulary, stock phrases shared by items and pool, an instruction template on a third
of the items so shingles recur). Copies of 2,250 eval items are planted in the pool:

* ``exact`` — verbatim; ``case`` — words re-cased; ``punctuation`` — punctuation removed
  and added; ``swap-2%`` / ``swap-5%`` — adjacent words swapped, one swap per 50 / 20 words
  (at least one); ``insert-2%`` / ``insert-5%`` — random words inserted at those rates;
* ``embedded`` — the item inside a 150-500-word document (half of them re-cased).

Ground truth per planted pair is its Jaccard and containment over word 5-gram sets,
computed by a plain-Python reference (sets of tuples) independent of modelward's
vectorised code. Every contender gets the same normalisation, 5-word shingles, 128
permutations and threshold 0.8, reads the same JSONL files and runs in its own process
(so its time and peak RSS are its own):

* ``modelward`` — ``evals.contamination.scan`` with every method;
* ``datasketch`` — ``MinHash.bulk`` + ``MinHashLSH(threshold=0.8, num_perm=128)`` (its
  own banding, 9 x 13), items indexed, every pool document queried; candidates are its
  matches (as its documentation uses them);
* ``rensa`` — ``RMinHash.from_token_sets`` + ``RMinHashLSH(0.8, 128, 8)`` (rensa needs
  bands dividing 128; 8 is its README's setting), the same way.

Figures: ``seconds`` (wall), ``cpu_seconds`` (every thread: the fairer figure on a busy
machine) and ``peak_rss_mb`` per contender; ``speedup_vs_*`` (wall, with the CPU ratio as
context); ``recall`` per contender and planted kind; ``precision`` per contender (flagged
pairs that are planted); ``near_dup_recall`` (planted copies with Jaccard >= 0.8) and
``embedded_recall`` per contender; for modelward ``near_dup_precision`` (pairs its exact or
near-duplicate methods flag) and ``embedded_precision`` (pairs containment flags);
``rensa_sketch_only_s`` (rensa sketching the pool's shingles pre-hashed by modelward's
tokenizer: what its MinHash alone costs); ``peak_rss_mb_1m_docs`` (modelward over a
1,000,000-document pool). ``--quick``: 500 items, 20,000 documents, no 1M run.

    python bench/contamination.py [--items 5000] [--pool 200000] [--repeats N]
                                  [--no-million] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

import _common as c

BENCH = "contamination"
K, NUM_PERM, THRESHOLD = 5, 128, 0.8
KINDS = ("exact", "case", "punctuation", "swap-2%", "swap-5%", "insert-2%", "insert-5%",
         "embedded")
PER_KIND = {"embedded": 500}  # others: 250 each -> 2,250 planted copies
TEMPLATE = "Read the passage below and answer the question that follows it:"


# --- data ---------------------------------------------------------------------------------
class Words:
    """A Zipfian vocabulary with punctuation and case variants, sampled in bulk."""

    def __init__(self, rng: np.random.Generator, size: int = 40_000) -> None:
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        seen: set[str] = set()
        words: list[str] = []
        while len(words) < size:
            n = int(rng.integers(2, 11))
            w = "".join(rng.choice(letters, n))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = np.array(words, dtype=object)
        p = 1.0 / (np.arange(size) + 2.7) ** 1.05
        self.p = p / p.sum()
        # token variants: plain, "word,", "word.", "Word"
        self.tokens = np.array([w for base in words for w in (base, base + ",", base + ".",
                                                              base.capitalize())],
                               dtype=object)
        self.rng = rng
        self.phrases = [" ".join(self.words[rng.integers(0, 3000, int(rng.integers(5, 10)))])
                        for _ in range(200)]

    def ids(self, n: int) -> np.ndarray:
        return self.rng.choice(len(self.words), size=n, p=self.p)

    def texts(self, lengths: np.ndarray, phrase_rate: float) -> list[str]:
        ids = self.ids(int(lengths.sum())) * 4
        variant = self.rng.choice(4, size=len(ids), p=[0.85, 0.05, 0.05, 0.05])
        toks = self.tokens[ids + variant]
        ends = np.cumsum(lengths)
        out = []
        phrase = self.rng.random(len(lengths)) < phrase_rate
        which = self.rng.integers(0, len(self.phrases), len(lengths))
        for i, (a, b) in enumerate(zip(ends - lengths, ends, strict=True)):
            text = " ".join(toks[a:b])
            if phrase[i]:
                cut = text.find(" ", len(text) // 2)
                cut = len(text) if cut < 0 else cut
                text = text[:cut] + " " + self.phrases[which[i]] + text[cut:]
            out.append(text[0].upper() + text[1:] + ".")
        return out


def _edit(rng, words: Words, text: str, kind: str) -> str:
    toks = text.split()
    if kind == "case":
        return " ".join(t.upper() if rng.random() < 0.3 else t.title() if rng.random() < 0.3
                        else t for t in toks)
    if kind == "punctuation":
        bare = [t.strip(".,?!;:") for t in text.split()]
        return " ".join(t + rng.choice(["", "", "", ",", ";", " -", "!"]) for t in bare)
    rate = 0.02 if kind.endswith("2%") else 0.05
    edits = max(1, round(rate * len(toks)))
    if kind.startswith("swap"):
        for i in rng.choice(len(toks) - 1, size=min(edits, len(toks) - 1), replace=False):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
    else:
        for _ in range(edits):
            toks.insert(int(rng.integers(0, len(toks) + 1)),
                        str(words.words[words.ids(1)[0]]))
    return " ".join(toks)


def generate(root: Path, n_items: int, n_pool: int, seed: int = 7, plant: bool = True) -> None:
    """evalset.jsonl, pool.jsonl and truth.json under ``root``."""
    rng = np.random.default_rng(seed)
    words = Words(rng)
    item_texts = words.texts(rng.integers(15, 61, n_items), phrase_rate=0.4)
    templated = rng.random(n_items) < 1 / 3
    item_texts = [f"{TEMPLATE} {t}" if tp else t
                  for t, tp in zip(item_texts, templated, strict=True)]
    with open(root / "evalset.jsonl", "wb") as fh:
        for i, t in enumerate(item_texts):
            fh.write(orjson.dumps({"id": f"q-{i:05d}", "input": {"question": t},
                                   "expected": "yes"}) + b"\n")
    truth = []
    planted: dict[int, str] = {}
    if plant:
        scale = min(1.0, n_items * 0.45 / 2250)  # 2,250 copies of 5,000 items
        kinds = [k for k in KINDS for _ in range(max(1, int(PER_KIND.get(k, 250) * scale)))]
        chosen = rng.choice(n_items, size=len(kinds), replace=False)
        where = rng.choice(n_pool, size=len(kinds), replace=False)
        for kind, item, doc in zip(kinds, chosen.tolist(), where.tolist(), strict=True):
            text = item_texts[item]
            if kind == "embedded":
                host = words.texts(rng.integers(150, 501, 1), phrase_rate=0.0)[0].split(" ")
                at = int(rng.integers(1, len(host)))
                body = _edit(rng, words, text, "case") if doc % 2 else text
                planted[doc] = " ".join(host[:at] + [body] + host[at:])
            else:
                planted[doc] = text if kind == "exact" else _edit(rng, words, text, kind)
            truth.append({"doc": doc, "item": item, "kind": kind})
    chunk = 50_000
    with open(root / "pool.jsonl", "wb") as fh:
        for lo in range(0, n_pool, chunk):
            n = min(chunk, n_pool - lo)
            lengths = np.clip(rng.lognormal(4.3, 0.7, n).astype(np.int64), 10, 600)
            texts = words.texts(lengths, phrase_rate=0.4)
            # a tenth of the pool carries the eval set's instruction template
            for j in np.flatnonzero(rng.random(n) < 0.1).tolist():
                texts[j] = f"{TEMPLATE} {texts[j]}"
            for j, t in enumerate(texts):
                t = planted.get(lo + j, t)
                fh.write(orjson.dumps({"id": f"d-{lo + j:07d}", "text": t}) + b"\n")
    for t in truth:  # the reference scores, computed independently of modelward's hashing
        a = ref_shingles(item_texts[t["item"]])
        b = ref_shingles(planted[t["doc"]])
        t["jaccard"] = len(a & b) / len(a | b)
        t["containment"] = len(a & b) / len(a)
    (root / "truth.json").write_bytes(orjson.dumps(truth))


def ref_shingles(text: str, k: int = K) -> set[tuple[str, ...]]:
    from modelward.evals.contamination.textindex import normalize

    w = normalize(text).split()
    return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)}


# --- contenders (each in its own process) ------------------------------------------------
def _items(root: Path) -> list:
    from modelward.evals.harness.evalsets import load_evalset_file

    return load_evalset_file(root / "evalset.jsonl")


def _pool_chunks(root: Path, size: int = 10_000):
    """(first doc number, texts) per chunk of the pool, streamed."""
    texts: list[str] = []
    first = 0
    with open(root / "pool.jsonl", "rb") as fh:
        for n, line in enumerate(fh):
            texts.append(orjson.loads(line)["text"])
            if len(texts) == size:
                yield first, texts
                first, texts = n + 1, []
    if texts:
        yield first, texts


def _shingle_strings(text: str) -> list[str]:
    from modelward.evals.contamination.textindex import normalize

    w = normalize(text).split()
    return [" ".join(w[i:i + K]) for i in range(len(w) - K + 1)]


def run_modelward(root: Path) -> dict:
    from modelward.evals.contamination.corpus import file_source
    from modelward.evals.contamination.scan import scan

    items = _items(root)
    report = scan(items, [file_source(root / "pool.jsonl")], max_matches=1000)
    pairs, methods = [], []
    for hit in report.contaminated:
        for m in hit.matches:
            pairs.append((int(m.doc_id[2:]), hit.index))
            methods.append(sorted(m.scores))
    return {"pairs": pairs, "methods": methods}


def run_datasketch(root: Path) -> dict:
    from datasketch import MinHash, MinHashLSH

    items = _items(root)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    sets = [[s.encode() for s in _shingle_strings(it.text())] for it in items]
    for i, m in enumerate(MinHash.bulk(sets, num_perm=NUM_PERM)):
        if sets[i]:
            lsh.insert(i, m)
    pairs = []
    for first, texts in _pool_chunks(root):
        sets = [[s.encode() for s in _shingle_strings(t)] for t in texts]
        for j, m in enumerate(MinHash.bulk(sets, num_perm=NUM_PERM)):
            if sets[j]:
                pairs += [(first + j, i) for i in lsh.query(m)]
    return {"pairs": pairs, "bands": [lsh.b, lsh.r]}


def run_rensa(root: Path) -> dict:
    from rensa import RMinHash, RMinHashLSH

    items = _items(root)
    lsh = RMinHashLSH(THRESHOLD, NUM_PERM, 8)
    sets = [_shingle_strings(it.text()) for it in items]
    for i, m in enumerate(RMinHash.from_token_sets(sets, NUM_PERM, 42)):
        if sets[i]:
            lsh.insert(i, m)
    pairs = []
    for first, texts in _pool_chunks(root):
        sets = [_shingle_strings(t) for t in texts]
        for j, m in enumerate(RMinHash.from_token_sets(sets, NUM_PERM, 42)):
            if sets[j]:
                pairs += [(first + j, i) for i in lsh.query(m)]
    return {"pairs": pairs, "bands": [8, 16]}


def run_rensa_sketch(root: Path) -> dict:
    """rensa's MinHash alone over shingles already hashed by modelward's tokenizer."""
    from rensa import RMinHash

    from modelward.evals.contamination.textindex import shingles, tokenize

    spent = 0.0
    for _first, texts in _pool_chunks(root, 20_000):
        g, off = shingles(tokenize(texts), K)
        t0 = time.perf_counter()
        RMinHash.digest_matrix_from_flat_token_hashes(g, off.astype(np.uint64), NUM_PERM, 42)
        spent += time.perf_counter() - t0
    return {"pairs": [], "sketch_seconds": spent}


CONTENDERS = {"modelward": run_modelward, "datasketch": run_datasketch, "rensa": run_rensa,
              "rensa-sketch": run_rensa_sketch}


def child(name: str, root: Path, out: Path) -> None:
    t0 = time.perf_counter()
    result = CONTENDERS[name](root)
    result["seconds"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # every thread, imports included
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    out.write_bytes(orjson.dumps(result))


def run_child(name: str, root: Path) -> dict:
    out = root / f"result-{name}.json"
    c.note(f"running {name} …")
    subprocess.run([sys.executable, __file__, "--child", name, "--data", str(root),
                    "--out", str(out)], check=True)
    return orjson.loads(out.read_bytes())


# --- scoring ------------------------------------------------------------------------------
def score(name: str, result: dict, truth: list[dict], context: dict) -> None:
    flagged = {tuple(p) for p in result["pairs"]}
    planted = {(t["doc"], t["item"]): t for t in truth}
    for kind in KINDS:
        group = [t for t in truth if t["kind"] == kind]
        hit = sum((t["doc"], t["item"]) in flagged for t in group)
        c.emit(BENCH, "recall", hit / len(group), "ratio", contender=name, kind=kind,
               planted=len(group), **context)
    true_pos = sum(p in planted for p in flagged)
    c.emit(BENCH, "precision", true_pos / len(flagged) if flagged else float("nan"), "ratio",
           contender=name, flagged=len(flagged), unplanted=len(flagged) - true_pos, **context)
    near = [t for t in truth if t["kind"] != "embedded" and t["jaccard"] >= THRESHOLD - 1e-9]
    found = sum((t["doc"], t["item"]) in flagged for t in near)
    c.emit(BENCH, "near_dup_recall", found / len(near), "ratio", contender=name,
           planted=len(near), **context)
    embedded = [t for t in truth if t["kind"] == "embedded"]
    found = sum((t["doc"], t["item"]) in flagged for t in embedded)
    c.emit(BENCH, "embedded_recall", found / len(embedded), "ratio", contender=name,
           planted=len(embedded), **context)
    if "methods" in result:  # precision of modelward's own methods
        for label, wanted in (("near_dup_precision", {"exact", "near-duplicate"}),
                              ("embedded_precision", {"containment"})):
            pairs = [tuple(p) for p, ms in zip(result["pairs"], result["methods"], strict=True)
                     if wanted & set(ms)]
            good = sum(p in planted for p in pairs)
            c.emit(BENCH, label, good / len(pairs) if pairs else float("nan"), "ratio",
                   contender=name, flagged=len(pairs), **context)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--pool", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of each contender, interleaved; medians are reported")
    ap.add_argument("--no-million", action="store_true",
                    help="skip the 1,000,000-document memory run")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.out)
        return
    if args.quick:
        args.items, args.pool, args.no_million = 500, 20_000, True
    root = c.out_dir(BENCH, f"{args.items}x{args.pool}")
    if not (root / "truth.json").is_file():
        c.note(f"generating {args.items:,} items and {args.pool:,} documents in {root} …")
        generate(root, args.items, args.pool)
    truth = orjson.loads((root / "truth.json").read_bytes())
    context = {"items": args.items, "pool": args.pool, "shingle": K, "num_perm": NUM_PERM,
               "threshold": THRESHOLD}
    runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for _ in range(args.repeats):  # interleaved, so load on the machine hits each alike
        for name in CONTENDERS:
            runs[name].append(run_child(name, root))
    results = {}
    for name, rs in runs.items():
        results[name] = dict(rs[0])
        for key in ("seconds", "cpu_seconds", "sketch_seconds"):
            if key in rs[0]:
                results[name][key] = c.median([r[key] for r in rs])
        results[name]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
    for name in ("modelward", "datasketch", "rensa"):
        r, spread = results[name], c.spread([x["seconds"] for x in runs[name]])
        c.emit(BENCH, "seconds", r["seconds"], "s", contender=name, **spread, **context)
        c.emit(BENCH, "cpu_seconds", r["cpu_seconds"], "s", contender=name, **context)
        c.emit(BENCH, "peak_rss_mb", r["peak_rss_mb"], "MiB", contender=name, **context)
        score(name, r, truth, context)
    mw = results["modelward"]
    for peer in ("datasketch", "rensa"):
        c.emit(BENCH, f"speedup_vs_{peer}", results[peer]["seconds"] / mw["seconds"], "x",
               cpu_speedup=round(results[peer]["cpu_seconds"] / mw["cpu_seconds"], 2),
               **context)
    c.emit(BENCH, "rensa_sketch_only_s", results["rensa-sketch"]["sketch_seconds"], "s",
           **context)
    if not args.no_million:
        big = c.out_dir(BENCH, f"{args.items}x1000000")
        if not (big / "pool.jsonl").is_file():
            c.note("generating a 1,000,000-document pool …")
            generate(big, args.items, 1_000_000, plant=False)
        r = run_child("modelward", big)
        size_mb = (big / "pool.jsonl").stat().st_size / 1024 / 1024
        c.emit(BENCH, "peak_rss_mb_1m_docs", r["peak_rss_mb"], "MiB",
               seconds=round(r["seconds"], 2), cpu_seconds=round(r["cpu_seconds"], 2),
               pool_file_mb=round(size_mb), **{**context, "pool": 1_000_000})


if __name__ == "__main__":
    main()
