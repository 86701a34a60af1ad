"""What a contamination scan reports (:class:`ContaminationReport`: per eval item, the
documents it was found in) and the options it runs with (:class:`Params`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ...errors import ValidationError

METHODS = ("exact", "near-duplicate", "containment", "ngram")
STRENGTH = {m: len(METHODS) - i for i, m in enumerate(METHODS)}  # exact strongest


def default_template_items(n_items: int) -> int:
    """More than this many items sharing a text make it template, by default."""
    return min(10, max(3, n_items // 3))


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
    batch_bytes: int = 4 << 20  # text tokenised and matched at once
    shard_bytes: int = 64 << 20  # at most this much of the pool per task on a Dask cluster

    def __post_init__(self) -> None:
        for name in ("ngram", "shingle", "num_perm", "max_matches", "template_items",
                     "batch_bytes", "shard_bytes"):
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
        """Text shared by more than this many items is template: 10, or a third of an eval
        set under 30 items (at least 3), so a passage a few items share is still indexed
        (see bench/contamination_template.py for the figures)."""
        if self.template_items is not None:
            return self.template_items
        return default_template_items(n_items)

    @property
    def containment_share(self) -> float:
        return self.threshold if self.containment is None else self.containment

    def to_dict(self) -> dict:
        out = asdict(self)
        out["containment"] = self.containment_share
        out["methods"] = list(self.methods)
        del out["batch_bytes"], out["shard_bytes"]
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
        return (STRENGTH[self.method], self.score)

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


class Findings:
    """The matches of a scan (or of one shard of it) as they are found, per eval item: the
    strongest ``max_matches`` kept, every matching document counted. Ties keep the order
    the documents were read in, so merging the findings of consecutive shards in order
    gives exactly what one pass over the whole pool gives."""

    def __init__(self, max_matches: int) -> None:
        self.max_matches = max_matches
        self.kept: dict[int, list[Match]] = {}  # eval item number -> matches
        self.counts: dict[int, int] = {}
        self.documents = 0

    def add(self, item: int, match: Match) -> None:
        self.counts[item] = self.counts.get(item, 0) + 1
        self._keep(item, [match])

    def merge(self, other: Findings, relocate: Callable[[Match], Match] | None = None) -> None:
        """Add the findings of the next part of the pool (``relocate`` fixes locators)."""
        self.documents += other.documents
        for item, n in other.counts.items():
            self.counts[item] = self.counts.get(item, 0) + n
        for item, matches in other.kept.items():
            self._keep(item, [relocate(m) for m in matches] if relocate else matches)

    def _keep(self, item: int, matches: list[Match]) -> None:
        bucket = self.kept.setdefault(item, [])
        bucket += matches
        if len(bucket) > 2 * self.max_matches:
            bucket.sort(key=Match.rank, reverse=True)  # stable: ties stay in reading order
            del bucket[self.max_matches:]

    def pruned(self) -> Findings:
        """The same findings with every item's matches cut to ``max_matches`` (what is
        sent back from a worker)."""
        for bucket in self.kept.values():
            bucket.sort(key=Match.rank, reverse=True)
            del bucket[self.max_matches:]
        return self

    def contaminated(self, ids: list[str]) -> list[ItemContamination]:
        out = []
        for i in sorted(self.kept):
            matches = sorted(self.kept[i], key=Match.rank, reverse=True)[:self.max_matches]
            out.append(ItemContamination(ids[i], i, matches, self.counts[i]))
        return out


Progress = Callable[[int, int | None, int], None]  # (bytes done, bytes total, documents)
