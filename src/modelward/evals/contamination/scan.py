"""Contamination scans: which eval items appear in few-shot pools, prompts, corpora or
training data, by which method, where, and how strongly.

::

    report = scan(items, [open_source("pool.jsonl"), open_source("prompt/support@prod", …)])
    for hit in report.contaminated:
        print(hit.item_id, hit.matches[0].method, hit.matches[0].locator)

Methods (see :mod:`.matching` for how each is computed without per-shingle loops):
``exact`` (whole normalised text), ``near-duplicate`` (Jaccard of word-shingle sets,
MinHash LSH then confirmed), ``containment`` (share of the item's shingles inside a longer
document) and ``ngram`` (any shared word n-gram, 13 by default). Items shorter than the
shingle (5 words) are found by ``exact`` only; shorter than the n-gram, not by ``ngram``.

The same :func:`scan` backs ``modelward contamination``, the MW302 guard and the API.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from .config import ContaminationConfig, Pair, load_config
from .corpus import Document, Source, texts_source
from .matching import EvalIndex, match_batch
from .report import (
    METHODS,
    STRENGTH,
    ContaminationReport,
    Findings,
    ItemContamination,
    Match,
    Params,
    Progress,
)
from .textindex import Batch, gram_hashes_at, tokenize

__all__ = ["METHODS", "ContaminationConfig", "ContaminationReport", "Findings",
           "ItemContamination", "Match", "Pair", "Params", "Progress", "load_config", "scan",
           "scan_rendered"]

EXCERPT = 300  # longest span text kept


def scan(items: Sequence, sources: Iterable[Source], *, progress: Progress | None = None,
         params: Params | None = None, client=None, **options) -> ContaminationReport:
    """Scan ``sources`` for the eval ``items`` (EvalItems, or objects with ``id`` and
    ``text()``). Options are the fields of :class:`Params` (``ngram=13``,
    ``threshold=0.8``, ``methods=(…)``, …). With ``client`` (a ``dask.distributed``
    Client, see :mod:`.cluster`) the pool is read and matched by the cluster's
    workers, shard by shard; the report is the same as a scan in this process."""
    started = time.perf_counter()
    params = params or Params(**options)
    sources = list(sources)
    ids = [str(it.id) for it in items]
    texts = [it.text() for it in items]
    if client is not None:
        from .cluster import scan_on_cluster

        index = build_index(texts, params)
        found = scan_on_cluster(client, index, ids, sources, params, progress)
    else:
        found = Findings(params.max_matches)
        total = sum(s.size or 0 for s in sources) or None

        def batch_done() -> None:
            if progress is not None:
                progress(sum(s.consumed for s in sources), total, found.documents)

        batches = (got for src in sources for got in prepared(src, params))
        index = scan_batches(batches, lambda: build_index(texts, params), ids, params, found,
                             batch_done)
    return ContaminationReport(
        items=len(ids), documents=found.documents, sources=[s.summary() for s in sources],
        contaminated=found.contaminated(ids), params=params,
        seconds=time.perf_counter() - started,
        short_items=int(np.count_nonzero(index.words < params.shingle)))


def build_index(texts: list[str], params: Params) -> EvalIndex:
    """The eval-side index every batch is matched against."""
    return EvalIndex(texts, shingle=params.shingle, ngram=params.ngram,
                     threshold=params.threshold, containment=params.containment_share,
                     num_perm=params.num_perm, template_items=params.template_for(len(texts)))


def scan_batches(batches: Iterator[tuple[Source, list[Document], Batch]],
                 index_of: Callable[[], EvalIndex], ids: list[str], params: Params,
                 found: Findings, batch_done: Callable[[], None] | None = None) -> EvalIndex:
    """Match every batch into ``found``; returns the index (``index_of()``)."""
    # a reader thread parses and tokenises the next batch while this one is matched
    # (numpy releases the GIL for the heavy array work); the first batch is read while
    # the eval index is built
    with ThreadPoolExecutor(1, thread_name_prefix="modelward-scan") as reader:
        pending = reader.submit(next, batches, None)
        index = index_of()
        while (got := pending.result()) is not None:
            pending = reader.submit(next, batches, None)
            src, docs, batch = got
            found.documents += len(docs)
            src.documents_read += len(docs)
            _scan_batch(index, ids, docs, batch, src.name, params, found)
            if batch_done is not None:
                batch_done()
    return index


def prepared(src: Source, params: Params) -> Iterator[tuple[Source, list[Document], Batch]]:
    """Batches of about ``batch_bytes`` of text, tokenised."""
    docs: list[Document] = []
    texts: list[str] = []
    size = 0
    for doc in src.documents():
        docs.append(doc)
        texts.append(doc[0])
        size += len(doc[0])
        if size >= params.batch_bytes or len(docs) >= 65536:
            yield src, docs, tokenize(texts)
            docs, texts, size = [], [], 0
    if docs:
        yield src, docs, tokenize(texts)


def _scan_batch(index: EvalIndex, ids: list[str], docs: list[Document], batch: Batch,
                source: str, params: Params, found: Findings) -> None:
    pairs = match_batch(index, batch, params.methods)
    for (d, i), scores in sorted(pairs.items()):
        doc = docs[d]
        if doc.owner is not None and ids[i] in doc.owner:
            continue  # e.g. the prompt rendered for this very item
        if "exact" in scores and _normalized(batch, d) != index.normalized[i]:
            del scores["exact"]  # a 44-bit hash collision, not a match
            if not scores:
                continue
        method = max(scores, key=STRENGTH.__getitem__)
        text, start, end = _span(index, batch, d, i, method, params)
        match = Match(ids[i], source, doc.locator, method, scores[method], text,
                      doc.doc_id, dict(sorted(scores.items(), key=lambda kv: -STRENGTH[kv[0]])),
                      start, end)
        found.add(i, match)


def _normalized(batch, d: int) -> str:
    a, b = batch.doc_words[d], batch.doc_words[d + 1]
    if a == b:
        return ""
    return " ".join(bytes(batch.buf[batch.word_start[a]:batch.word_end[b - 1]])
                    .decode("utf-8").split())


def _span(index: EvalIndex, batch, d: int, i: int, method: str, params: Params
          ) -> tuple[str, int | None, int | None]:
    """The densest stretch of the document holding the item's shingles (n-grams for an
    n-gram match), at most twice the item's length; the whole document for exact."""
    lo, hi = int(batch.doc_words[d]), int(batch.doc_words[d + 1])
    if hi == lo:
        return "", 0, 0
    first, last = 0, hi - lo - 1
    k = params.ngram if method == "ngram" else params.shingle
    if method != "exact" and hi - lo >= k:
        grams = gram_hashes_at(batch, np.arange(lo, hi - k + 1), k,
                               seed=1 if method == "ngram" else 0)
        mine = (index.ng_vals[index.ng_off[i]:index.ng_off[i + 1]] if method == "ngram"
                else index.sh_vals[index.sh_off[i]:index.sh_off[i + 1]])
        # the item's keys are sorted: membership by binary search (np.isin costs more here)
        where = np.minimum(np.searchsorted(mine, grams), len(mine) - 1)
        pos = np.flatnonzero(mine[where] == grams) if len(mine) else where[:0]
        if len(pos):
            width = max(2 * int(index.words[i]), k)
            reach = np.searchsorted(pos, pos + width - k, side="right") - 1
            best = int(np.argmax(reach - np.arange(len(pos))))
            first, last = int(pos[best]), int(pos[reach[best]]) + k - 1
    text, start, end = batch.span(d, first, last)
    if len(text) > EXCERPT:
        half = EXCERPT // 2 - 2
        text = text[:half].rstrip() + " … " + text[-half:].lstrip()
    return text, (start if start >= 0 else None), (end if end >= 0 else None)


def scan_rendered(items: Sequence, rendered: Iterable[tuple[str, str]], *, name: str,
                  params: Params | None = None, **options) -> ContaminationReport:
    """Eval items found in the prompts rendered for *other* items of the same run
    (``rendered``: (item id, text) pairs), e.g. few-shot examples drawn from the eval set.
    A prompt naturally holds its own item, and any item that is itself a near-duplicate
    or contained copy of that item, so those are not reported."""
    params = params or Params(**options)
    by_id = {str(it.id): it for it in items}
    alike: dict[str, set[str]] = {i: {i} for i in by_id}
    selves = texts_source("eval set", [(i, it.text(), [i]) for i, it in by_id.items()])
    for hit in scan(items, [selves], params=replace(params, max_matches=len(by_id))
                    ).contaminated:
        for m in hit.matches:
            alike[m.locator].add(hit.item_id)
    entries = [(f"prompt of {item_id}", text, alike.get(item_id, {item_id}))
               for item_id, text in rendered if text]
    return scan(items, [texts_source(name, entries, kind="rendered")], params=params)
