"""The eval-side index and the vectorised matching of one batch of pool documents.

The eval set is small and the pool large, so the eval items are indexed once (their whole
texts, word shingles, word n-grams, MinHash band keys) and the pool streams through in
batches; per batch everything is whole-array numpy work, never a loop over shingles.

* exact — the whole normalised text hashes equal, then the strings are compared;
* near-duplicate — Jaccard of the shingle sets >= threshold: MinHash LSH proposes pairs,
  the signatures estimate them, the exact shingle sets confirm them. Only documents that
  can reach the threshold are sketched: a document needs ``t * |B|`` of its distinct
  shingles in the eval index and a size within ``[t * min|A|, max|A| / t]``;
* containment — the share of the item's shingles present in the document >= threshold:
  candidates come from a prefix filter (each item indexed by its ``|A| - ceil(c|A|) + 1``
  rarest shingles, so any document holding a share c must hold one of them; shingles
  shared by many items, i.e. templates, go last), then exact counts confirm;
* ngram — any word n-gram (13 by default) of the item in the document; the score is the
  share of the item's n-grams found. Template text does not count: a word is template
  when a shingle covering it is shared by more than ``template_items`` items, and an
  n-gram with fewer than half its words outside templates is not indexed (nor is one
  shared by more than ``template_items`` items), so "instruction + two common words"
  never makes a match.
"""

from __future__ import annotations

import math

import numpy as np

from .sketches import MinHasher, SortedSet, lsh_params
from .textindex import (
    HASH_BITS,
    HASH_MASK,
    U64,
    gram_hashes_at,
    ranges,
    shingle_starts,
    shingles,
    text_hashes,
    tokenize,
)

_EPS = 1e-9
_SHIFT = U64(HASH_BITS)
_SHIFT_ITEM = U64(64 - HASH_BITS)
_ITEM_MASK = U64((1 << (64 - HASH_BITS)) - 1)


class Postings:
    """A multimap from uint64 keys to item numbers: sorted unique keys (behind a bitmap)
    and, for each key, its items."""

    def __init__(self, keys: np.ndarray, items: np.ndarray) -> None:
        if not len(items) or int(items.max()) < 1 << (64 - HASH_BITS):
            # keys are 44-bit: key and item sort together as one uint64 (faster than lexsort)
            both = np.sort((keys << _SHIFT_ITEM) | items.astype(U64))
            keys, items = both >> _SHIFT_ITEM, (both & _ITEM_MASK).astype(np.int64)
        else:
            order = np.lexsort((items, keys))
            keys, items = keys[order], items[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        self.set = SortedSet(keys[first])
        self.offsets = np.append(np.flatnonzero(first), len(keys)).astype(np.int64)
        self.items = items.astype(np.int64)

    def df(self) -> np.ndarray:
        return np.diff(self.offsets)

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every (query, item) posting hit: (query position, item, key number)."""
        pos, key = self.set.find(queries)
        counts = self.offsets[key + 1] - self.offsets[key]
        items = self.items[ranges(self.offsets[key], counts)]
        return np.repeat(pos, counts), items, np.repeat(key, counts)


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs of non-negative ints below 2**31, sorted."""
    key = _sorted_unique((a.astype(np.int64) << 32) | b.astype(np.int64))
    return key >> 32, key & 0xFFFFFFFF


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


class EvalIndex:
    """Everything the scan needs to know about the eval items, built once."""

    def __init__(self, texts: list[str], *, shingle: int, ngram: int, threshold: float,
                 containment: float, num_perm: int, template_items: int) -> None:
        self.n = len(texts)
        self.k, self.ngram = shingle, ngram
        self.threshold, self.containment = threshold, containment
        batch = tokenize(texts)
        self.words = batch.word_counts()
        bounds = zip(batch.doc_words[:-1], batch.doc_words[1:], strict=True)
        self.normalized = [" ".join(bytes(batch.buf[batch.word_start[a]:batch.word_end[b - 1]])
                                    .decode("utf-8").split()) if b > a else ""
                           for a, b in bounds]
        has = np.flatnonzero(self.words > 0)
        self.exact = Postings(text_hashes(batch)[has], has)
        self.lengths = np.unique(self.words[has])
        # distinct shingles per item, sorted: item i's are sh_vals[sh_off[i]:sh_off[i+1]]
        g, off = shingles(batch, shingle)
        uniq = _sorted_unique((np.repeat(np.arange(self.n, dtype=U64), np.diff(off)) << _SHIFT)
                              | g)
        self.sh_item = (uniq >> _SHIFT).astype(np.int64)
        self.sh_vals = uniq & HASH_MASK
        self.sh_size = np.bincount(self.sh_item, minlength=self.n)
        self.sh_off = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(self.sh_size, out=self.sh_off[1:])
        self.shingles = Postings(self.sh_vals, self.sh_item)
        sized = self.sh_size[self.sh_size > 0]
        self.min_size = int(sized.min()) if len(sized) else 0
        self.max_size = int(sized.max()) if len(sized) else 0
        self.prefix = self._prefix_postings()
        self.hasher = MinHasher(num_perm, *lsh_params(threshold, num_perm))
        self.sigs = np.zeros((self.n, num_perm), dtype=np.uint32)
        self.bands = None
        owners = np.flatnonzero(self.sh_size > 0)
        self.has_shingles = bool(len(owners))
        if self.has_shingles:
            seg = np.append(self.sh_off[owners], self.sh_off[-1])
            self.sigs[owners] = self.hasher.signatures(self.sh_vals, seg)
            keys = self.hasher.bands_of(self.sigs[owners])
            self.bands = Postings(keys.ravel(), np.repeat(owners, self.hasher.bands))
        # n-grams, except those made mostly of template text (see _template_words)
        gn, offn = shingles(batch, ngram, seed=1)
        starts = shingle_starts(batch, offn)
        plain = np.concatenate(([0], np.cumsum(~self._template_words(batch, g, off,
                                                                      template_items))))
        own = plain[starts + ngram] - plain[starts] >= (ngram + 1) // 2
        item_of = np.repeat(np.arange(self.n, dtype=U64), np.diff(offn))[own]
        un = _sorted_unique((item_of << _SHIFT) | gn[own])
        n_item, n_vals = (un >> _SHIFT).astype(np.int64), un & HASH_MASK
        full = Postings(n_vals, n_item)
        keep = full.df()[np.searchsorted(full.set.values, n_vals)] <= template_items
        self.ngrams = Postings(n_vals[keep], n_item[keep])
        self.ng_size = np.bincount(n_item[keep], minlength=self.n)
        self.ng_vals = n_vals[keep]  # by item, like sh_vals
        self.ng_off = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(self.ng_size, out=self.ng_off[1:])

    def _template_words(self, batch, g, off, template_items: int) -> np.ndarray:
        """Words of the items covered by a shingle that more than ``template_items`` items
        share: instructions and templates, which say nothing about one item."""
        where = np.searchsorted(self.shingles.set.values, g)
        shared = self.shingles.df()[where] > template_items
        starts = shingle_starts(batch, off)[shared]
        edge = np.zeros(len(batch.words) + 1, dtype=np.int64)
        np.add.at(edge, starts, 1)
        np.add.at(edge, starts + self.k, -1)
        return np.cumsum(edge[:-1]) > 0

    def _prefix_postings(self) -> Postings:
        """Each item's ``|A| - ceil(c|A|) + 1`` shingles with the fewest items (a document
        holding a share c of the item must hold at least one of them)."""
        where = np.searchsorted(self.shingles.set.values, self.sh_vals)
        df = self.shingles.df()[where]
        order = np.lexsort((self.sh_vals, df, self.sh_item))  # by item, then rarest first
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - self.sh_off[self.sh_item[order]]
        size = self.sh_size[self.sh_item]
        need = np.ceil(self.containment * size - _EPS).astype(np.int64)
        keep = rank < size - need + 1
        return Postings(self.sh_vals[keep], self.sh_item[keep])

    # --- per batch ---------------------------------------------------------------------
    def overlap(self, uniq: np.ndarray, docs: np.ndarray, items: np.ndarray) -> np.ndarray:
        """|A ∩ B| for each (document, item) pair: the item's shingles looked up in the
        document's sorted distinct shingle keys."""
        sizes = self.sh_size[items]
        rep = np.repeat(np.arange(len(docs)), sizes)
        vals = self.sh_vals[ranges(self.sh_off[items], sizes)]
        query = (docs[rep].astype(U64) << _SHIFT) | vals
        pos = np.minimum(np.searchsorted(uniq, query), max(len(uniq) - 1, 0))
        found = uniq[pos] == query if len(uniq) else np.zeros(len(query), dtype=bool)
        return np.bincount(rep[found], minlength=len(docs))


def match_batch(index: EvalIndex, batch, methods) -> dict[tuple[int, int], dict[str, float]]:
    """{(document in batch, item): {method: score}} for one tokenised batch."""
    found: dict[tuple[int, int], dict[str, float]] = {}

    def add(method, docs, items, scores):
        for d, i, s in zip(docs.tolist(), items.tolist(), scores.tolist(), strict=True):
            found.setdefault((d, i), {})[method] = round(float(s), 4)

    n = batch.n_docs
    if "exact" in methods:
        # only documents with as many words as some item can equal one
        same = np.flatnonzero(np.isin(batch.word_counts(), index.lengths))
        pos, items, _ = index.exact.lookup(text_hashes(batch, same))
        add("exact", same[pos], items, np.ones(len(pos)))
    shingled = {"near-duplicate", "containment"} & set(methods) or (
        "ngram" in methods and index.ngram >= index.k)
    if not (shingled and index.has_shingles):
        if "ngram" in methods:
            add("ngram", *_ngrams(index, batch, None, None))
        return found
    g, off = shingles(batch, index.k)
    gdoc = np.repeat(np.arange(n, dtype=np.int64), np.diff(off))
    hit, _ = index.shingles.set.find(g)
    if {"near-duplicate", "containment"} & set(methods):
        keys = (gdoc.astype(U64) << _SHIFT) | g
        uniq = _sorted_unique(keys)
        udoc = (uniq >> _SHIFT).astype(np.int64)
        dsize = np.bincount(udoc, minlength=n)
        doff = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(dsize, out=doff[1:])
        hits = _sorted_unique(keys[hit])  # distinct (document, shingle) pairs in the index
        hdoc = (hits >> _SHIFT).astype(np.int64)
        if "near-duplicate" in methods:
            add("near-duplicate", *_near_duplicates(index, uniq, hdoc, dsize, doff))
        if "containment" in methods:
            add("containment", *_containment(index, uniq, hits, hdoc, dsize, doff))
    if "ngram" in methods:
        # an n-gram shorter than a shingle cannot be screened by the shingle hits
        screened = (g, off, gdoc) if index.ngram >= index.k else None
        add("ngram", *_ngrams(index, batch, screened, hit))
    return found


def _ngrams(index: EvalIndex, batch, shingled, hit):
    """Documents sharing an indexed n-gram with an item. With n >= k only runs whose first
    and last k-word shingles are both in the index can be one, so only those are hashed."""
    if not len(index.ngrams.set):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    if shingled is None:
        gn, offn = shingles(batch, index.ngram, seed=1)
        starts = shingle_starts(batch, offn)
        docs_of = np.repeat(np.arange(batch.n_docs), np.diff(offn))
    else:
        g, off, gdoc = shingled
        lag = index.ngram - index.k
        is_hit = np.zeros(len(g), dtype=bool)
        is_hit[hit] = True
        ok = np.flatnonzero(is_hit[:len(g) - lag] & is_hit[lag:])
        ok = ok[gdoc[ok] == gdoc[ok + lag]]  # the run stays inside one document
        docs_of = gdoc[ok]
        starts = batch.doc_words[docs_of] + (ok - off[docs_of])
        gn = gram_hashes_at(batch, starts, index.ngram, seed=1)
    pos, items, key = index.ngrams.lookup(gn)
    docs = docs_of[pos]
    # distinct (document, item, n-gram) triples, then n-grams per (document, item)
    order = np.lexsort((key, items, docs))
    docs, items, key = docs[order], items[order], key[order]
    new = np.ones(len(docs), dtype=bool)
    new[1:] = (docs[1:] != docs[:-1]) | (items[1:] != items[:-1]) | (key[1:] != key[:-1])
    docs, items = docs[new], items[new]
    start = np.ones(len(docs), dtype=bool)
    start[1:] = (docs[1:] != docs[:-1]) | (items[1:] != items[:-1])
    counts = np.diff(np.append(np.flatnonzero(start), len(docs)))
    docs, items = docs[start], items[start]
    return docs, items, counts / index.ng_size[items]


def _near_duplicates(index: EvalIndex, uniq, hdoc, dsize, doff):
    t = index.threshold
    dhits = np.bincount(hdoc, minlength=len(dsize))
    # exact necessary conditions: J >= t needs |A∩B| >= t|B| and t|A| <= |B| <= |A|/t
    ok = ((dsize > 0) & (dhits >= np.ceil(t * dsize - _EPS))
          & (dsize >= t * index.min_size - _EPS) & (dsize <= index.max_size / t + _EPS))
    cand = np.flatnonzero(ok)
    empty = (np.empty(0, dtype=np.int64),) * 2 + (np.empty(0),)
    if not len(cand) or index.bands is None:
        return empty
    seg = np.zeros(len(cand) + 1, dtype=np.int64)
    np.cumsum(dsize[cand], out=seg[1:])
    vals = (uniq & HASH_MASK)[ranges(doff[cand], dsize[cand])]
    sigs = index.hasher.signatures(vals, seg)
    pos, items, _ = index.bands.lookup(index.hasher.bands_of(sigs).ravel())
    if not len(pos):
        return empty
    local, items = unique_pairs(pos // index.hasher.bands, items)
    # estimate, with a 3-sigma margin so confirmation (not estimation) decides
    est = (sigs[local] == index.sigs[items]).mean(axis=1)
    margin = 3 * math.sqrt(t * (1 - t) / index.hasher.num_perm)
    keep = est >= t - margin
    local, items = local[keep], items[keep]
    docs = cand[local]
    inter = index.overlap(uniq, docs, items)
    jac = inter / (index.sh_size[items] + dsize[docs] - inter)
    keep = jac >= t - _EPS
    return docs[keep], items[keep], jac[keep]


def _containment(index: EvalIndex, uniq, hits, hdoc, dsize, doff):
    c = index.containment
    pos, items, _ = index.prefix.lookup(hits & HASH_MASK)
    docs, items = unique_pairs(hdoc[pos], items)
    sizes = index.sh_size[items]
    ok = dsize[docs] >= np.ceil(c * sizes - _EPS)
    docs, items = docs[ok], items[ok]
    inter = index.overlap(uniq, docs, items)
    share = inter / np.maximum(index.sh_size[items], 1)
    keep = share >= c - _EPS
    return docs[keep], items[keep], share[keep]
