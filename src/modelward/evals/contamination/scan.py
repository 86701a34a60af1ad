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
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ...errors import ConfigError, ValidationError
from .corpus import Document, Source, texts_source
from .matching import EvalIndex, match_batch
from .textindex import Batch, gram_hashes_at, tokenize

METHODS = ("exact", "near-duplicate", "containment", "ngram")
_STRENGTH = {m: len(METHODS) - i for i, m in enumerate(METHODS)}  # exact strongest
EXCERPT = 300  # longest span text kept


@dataclass(frozen=True)
class Params:
    ngram: int = 13
    shingle: int = 5
    threshold: float = 0.8  # Jaccard for near-duplicates
    containment: float | None = None  # share of the item's shingles; default: threshold
    methods: tuple[str, ...] = METHODS
    num_perm: int = 128
    max_matches: int = 10  # matches kept per item (all are counted)
    template_items: int | None = None  # text in more items is template; default below
    batch_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        for name in ("ngram", "shingle", "num_perm", "max_matches", "template_items",
                     "batch_bytes"):
            value = getattr(self, name)
            if value is None and name == "template_items":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"must be a whole number of at least 1, got {value!r}",
                                      field=name)
        if self.ngram > 64 or self.shingle > 64:
            raise ValidationError("at most 64 words", field="ngram" if self.ngram > 64
                                  else "shingle")
        for name in ("threshold", "containment"):
            value = getattr(self, name)
            if value is None and name == "containment":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 < value <= 1:
                raise ValidationError(f"must be a number in (0, 1], got {value!r}", field=name)
        methods = tuple(self.methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValidationError("unknown method " + ", ".join(map(repr, unknown)) if unknown
                                  else "choose at least one method", field="methods",
                                  hint="methods: " + ", ".join(METHODS))
        object.__setattr__(self, "methods", tuple(m for m in METHODS if m in methods))

    def template_for(self, n_items: int) -> int:
        """Text shared by more than this many items is template: 10, or 5% of a small eval
        set (at least 2)."""
        if self.template_items is not None:
            return self.template_items
        return min(10, max(2, n_items // 20))

    @property
    def containment_share(self) -> float:
        return self.threshold if self.containment is None else self.containment

    def to_dict(self) -> dict:
        out = asdict(self)
        out["containment"] = self.containment_share
        out["methods"] = list(self.methods)
        del out["batch_bytes"]
        return out


@dataclass(frozen=True)
class Match:
    """One document an eval item was found in."""

    item_id: str
    source: str
    locator: str
    method: str  # the strongest method that fired
    score: float
    span: str  # the matching text as the source has it (normalised when it cannot be cut)
    doc_id: str | None = None
    scores: dict = field(default_factory=dict)  # every method that fired
    start: int | None = None  # character offsets of the span in the document
    end: int | None = None

    def rank(self) -> tuple:
        return (_STRENGTH[self.method], self.score)

    def to_dict(self) -> dict:
        return {"source": self.source, "locator": self.locator, "doc_id": self.doc_id,
                "method": self.method, "score": self.score, "scores": self.scores,
                "span": self.span, "start": self.start, "end": self.end}


@dataclass
class ItemContamination:
    item_id: str
    index: int  # position in the eval set
    matches: list[Match]  # strongest first, at most Params.max_matches
    documents: int  # every matching document, kept or not

    @property
    def best(self) -> Match:
        return self.matches[0]

    def to_dict(self) -> dict:
        return {"item": self.item_id, "documents": self.documents,
                "matches": [m.to_dict() for m in self.matches]}


@dataclass
class ContaminationReport:
    items: int
    documents: int
    sources: list[dict]
    contaminated: list[ItemContamination]  # in eval-set order
    params: Params
    seconds: float
    short_items: int = 0  # items with fewer words than the shingle: exact match only

    @property
    def clean(self) -> bool:
        return not self.contaminated

    def by_method(self) -> dict[str, int]:
        out = {m: 0 for m in METHODS}
        for c in self.contaminated:
            out[c.best.method] += 1
        return out

    def to_dict(self) -> dict:
        return {"items": self.items, "contaminated": len(self.contaminated),
                "documents": self.documents, "short_items": self.short_items,
                "by_method": self.by_method(), "params": self.params.to_dict(),
                "sources": self.sources, "seconds": round(self.seconds, 3),
                "findings": [c.to_dict() for c in self.contaminated]}


Progress = Callable[[int, int | None, int], None]  # (bytes done, bytes total, documents)


def scan(items: Sequence, sources: Iterable[Source], *, progress: Progress | None = None,
         params: Params | None = None, **options) -> ContaminationReport:
    """Scan ``sources`` for the eval ``items`` (EvalItems, or objects with ``id`` and
    ``text()``). Options are the fields of :class:`Params` (``ngram=13``,
    ``threshold=0.8``, ``methods=(…)``, …)."""
    started = time.perf_counter()
    params = params or Params(**options)
    sources = list(sources)
    ids = [str(it.id) for it in items]
    kept: dict[int, list[Match]] = {}
    counts: dict[int, int] = {}
    total = sum(s.size or 0 for s in sources) or None
    documents = 0
    # a reader thread parses and tokenises the next batch while this one is matched
    # (numpy releases the GIL for the heavy array work); the first batch is read while
    # the eval index is built
    with ThreadPoolExecutor(1, thread_name_prefix="modelward-scan") as reader:
        batches = (got for src in sources for got in _prepared(src, params))
        pending = reader.submit(next, batches, None)
        index = EvalIndex([it.text() for it in items], shingle=params.shingle,
                          ngram=params.ngram, threshold=params.threshold,
                          containment=params.containment_share, num_perm=params.num_perm,
                          template_items=params.template_for(len(ids)))
        while (got := pending.result()) is not None:
            pending = reader.submit(next, batches, None)
            src, docs, batch = got
            documents += len(docs)
            src.documents_read += len(docs)
            _scan_batch(index, ids, docs, batch, src, params, kept, counts)
            if progress is not None:
                progress(sum(s.consumed for s in sources), total, documents)
    contaminated = []
    for i in sorted(kept):
        matches = sorted(kept[i], key=Match.rank, reverse=True)[:params.max_matches]
        contaminated.append(ItemContamination(ids[i], i, matches, counts[i]))
    return ContaminationReport(
        items=len(ids), documents=documents, sources=[s.summary() for s in sources],
        contaminated=contaminated, params=params, seconds=time.perf_counter() - started,
        short_items=int(np.count_nonzero(index.words < params.shingle)))


def _prepared(src: Source, params: Params) -> Iterator[tuple[Source, list[Document], Batch]]:
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
                src: Source, params: Params, kept: dict, counts: dict) -> None:
    found = match_batch(index, batch, params.methods)
    if not found:
        return
    for (d, i), scores in sorted(found.items()):
        doc = docs[d]
        if doc.owner is not None and ids[i] in doc.owner:
            continue  # e.g. the prompt rendered for this very item
        if "exact" in scores and _normalized(batch, d) != index.normalized[i]:
            del scores["exact"]  # a 44-bit hash collision, not a match
            if not scores:
                continue
        method = max(scores, key=_STRENGTH.__getitem__)
        text, start, end = _span(index, batch, d, i, method, params)
        match = Match(ids[i], src.name, doc.locator, method, scores[method], text,
                      doc.doc_id, dict(sorted(scores.items(), key=lambda kv: -_STRENGTH[kv[0]])),
                      start, end)
        counts[i] = counts.get(i, 0) + 1
        bucket = kept.setdefault(i, [])
        bucket.append(match)
        if len(bucket) > 2 * params.max_matches:
            bucket.sort(key=Match.rank, reverse=True)
            del bucket[params.max_matches:]


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


# --- modelward.toml ----------------------------------------------------------------------
PARAM_KEYS = ("ngram", "shingle", "threshold", "containment", "methods", "max_matches",
              "template_items")
TABLE_KEYS = ("pairs", "runs", *PARAM_KEYS)
PAIR_KEYS = ("evalset", "against", *PARAM_KEYS)


@dataclass(frozen=True)
class Pair:
    evalset: str  # a path (relative to modelward.toml) or a sha256: digest
    against: tuple[str, ...]  # files, directories, digests, aliases
    params: Params


@dataclass(frozen=True)
class ContaminationConfig:
    """The ``[contamination]`` table::

        [contamination]
        ngram = 13                 # defaults for every scan (the CLI's flags override)
        threshold = 0.8
        runs = true                # MW302 also scans eval runs' rendered prompts

        [[contamination.pairs]]
        evalset = "evals/support.jsonl"            # or "sha256:…"
        against = ["prompt/support@production", "sha256:…", "data/pool.jsonl"]
        threshold = 0.9            # any scan option, for this pair only
    """

    params: Params = field(default_factory=Params)
    pairs: tuple[Pair, ...] = ()
    runs: bool = True


def _params(table: dict, base: Params | None, where: str) -> Params:
    values = {k: table[k] for k in PARAM_KEYS if k in table}
    if "methods" in values:
        if isinstance(values["methods"], str) or not isinstance(values["methods"], list):
            raise ConfigError(f"{where}.methods must be a list such as [\"exact\", \"ngram\"]")
        values["methods"] = tuple(values["methods"])
    try:
        return replace(base, **values) if base is not None else Params(**values)
    except ValidationError as exc:
        raise ConfigError(f"{where}.{exc.field}: {exc.detail}", hint=exc.hint) from None


def load_config(table: dict, source: str = "modelward.toml") -> ContaminationConfig:
    """Validate the ``[contamination]`` table; unknown keys are errors naming the key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [contamination] must be a table")
    for key in table:
        if key not in TABLE_KEYS:
            raise ConfigError(f"{source}: unknown key contamination.{key}",
                              hint="known keys: " + ", ".join(TABLE_KEYS))
    params = _params(table, None, f"{source}: contamination")
    runs = table.get("runs", True)
    if not isinstance(runs, bool):
        raise ConfigError(f"{source}: contamination.runs must be true or false")
    raw = table.get("pairs", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: contamination.pairs must be an array of tables "
                          "([[contamination.pairs]])")
    pairs = []
    for n, entry in enumerate(raw, start=1):
        where = f"{source}: contamination.pairs[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        for key in entry:
            if key not in PAIR_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r}",
                                  hint="known keys: " + ", ".join(PAIR_KEYS))
        evalset, against = entry.get("evalset"), entry.get("against")
        if not isinstance(evalset, str) or not evalset.strip():
            raise ConfigError(f"{where}.evalset is required: a path or a sha256: digest")
        if isinstance(against, str):
            against = [against]
        if (not isinstance(against, list) or not against
                or not all(isinstance(a, str) and a.strip() for a in against)):
            raise ConfigError(f"{where}.against must be a non-empty list of sources",
                              hint='e.g. against = ["prompt/support@production", "pool.jsonl"]')
        pairs.append(Pair(evalset.strip(), tuple(a.strip() for a in against),
                          _params(entry, params, where)))
    return ContaminationConfig(params, tuple(pairs), runs)
