"""How well an eval set's segment and source mix matches production traffic.

Each eval item's segments are its own ``segments`` laid over the segments of the decision
it links to (``decision_id``). Traffic is the decisions recorded in a window, counted in
SQL by their segments column (canonical JSON, so equal segment sets group together):
Python then reads one row per distinct combination, not one per decision.

A *dimension* is one segment key (``tier``) or several joined (``tier+topic``, compared as
combined cells). Per dimension: each value's share of traffic and of the eval set, their
ratio, the total variation distance and Pearson's chi-square goodness of fit of the eval
counts against the traffic shares. :func:`compare` backs ``modelward evalset compare``
and MW303 alike.

A segment is *under-represented* (:func:`under_represented`) when two things hold: its
eval share is below ``min_ratio`` times its traffic share (the size that matters), and
the shortfall is more than sampling can explain. The second is a one-sided exact test
per segment: were the items drawn from the same population as the traffic, how likely is
an eval count this low? It is Fisher's exact test of the 2x2 table (eval vs traffic, in
the segment vs not), the hypergeometric lower tail, which takes the traffic share's own
uncertainty into account and becomes the binomial tail when traffic is large. The
p-values of all the segments judged in one eval set are adjusted by Holm's step-down
method, so ``alpha`` bounds the chance that a random sample of traffic is reported at
all (family-wise), however many segment keys are compared.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from ...errors import ValidationError
from ...ids import is_uuid
from ...ledger import segments as ledger_segments
from ...timefmt import iso
from ..harness.evalsets import EvalItem
from .stats import chi2_goodness_of_fit, total_variation

Dimension = tuple[str, ...]
MAX_DEFAULT_VALUES = 50  # a key with more distinct traffic values is compared only if named
FEEDBACK_SOURCES = ("thumbs_up", "thumbs_down")


def parse_by(value: str | Iterable[str] | None, field: str = "--by") -> list[Dimension] | None:
    """``tier,topic`` -> [(tier,), (topic,)]; ``tier+topic`` -> [(tier, topic)]."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    dims = []
    for part in parts:
        keys = tuple(k.strip() for k in str(part).split("+"))
        if not part.strip():
            continue
        if any(not k for k in keys):
            raise ValidationError(f"{part!r} names an empty segment key", field=field,
                                  hint="write e.g. tier,topic or tier+topic")
        dims.append(keys)
    if not dims:
        raise ValidationError("name at least one segment key", field=field)
    return dims


def value_text(value) -> str | None:
    """A segment value as a category: strings as they are, other JSON scalars as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def cell_of(segments: dict, dim: Dimension) -> tuple:
    return tuple(value_text(segments.get(k)) for k in dim)


def segment_label(dim: Dimension, cell: tuple) -> str:
    return ", ".join(f"{k}={'(none)' if v is None else v}" for k, v in zip(dim, cell, strict=True))


def item_segments(db, items: list[EvalItem]) -> tuple[list[dict], int]:
    """Each item's segments (its decision's, overlaid with its own) and how many items
    link to a decision found in the ledger. ``db`` is a Connection or a guard View."""
    found = ledger_segments.segments_of(db, {it.decision_id for it in items
                                             if is_uuid(it.decision_id)})
    out = []
    for it in items:
        merged = dict(found.get(it.decision_id, {}))
        merged.update(it.segments)
        out.append(merged)
    return out, sum(1 for it in items if it.decision_id in found)


@dataclass
class Traffic:
    """Decisions in [since, until) counted by their distinct segment combinations."""

    since: int
    until: int
    total: int = 0
    combos: list[tuple[dict, int]] = field(default_factory=list)

    def counts(self, dim: Dimension) -> Counter:
        out: Counter = Counter()
        for segs, n in self.combos:
            out[cell_of(segs, dim)] += n
        return out

    def keys(self) -> dict[str, int]:
        """Segment key -> number of distinct values it takes in traffic."""
        values: dict[str, set] = {}
        for segs, _n in self.combos:
            for k, v in segs.items():
                values.setdefault(k, set()).add(value_text(v))
        return {k: len(v) for k, v in values.items()}


def traffic(db, since: int, until: int) -> Traffic:
    """Count the window's decisions per segments value, in SQL."""
    out = Traffic(since, until)
    for segs, n in ledger_segments.counts(db, since, until):
        out.combos.append((segs, n))
        out.total += n
    return out


@dataclass
class Share:
    cell: tuple
    traffic: int
    traffic_share: float
    items: int
    eval_share: float
    ratio: float | None  # eval share / traffic share; None when the segment has no traffic


@dataclass
class DimensionReport:
    dim: Dimension
    shares: list[Share]
    tvd: float | None
    chi2: float | None
    dof: int
    p_value: float | None
    low_expected: int  # categories whose expected eval count is below 5
    labelled: int  # items carrying at least one key of the dimension

    def to_dict(self) -> dict:
        return {"by": list(self.dim), "labelled_items": self.labelled, "tvd": self.tvd,
                "chi2": None if self.chi2 is None or math.isinf(self.chi2) else self.chi2,
                "chi2_infinite": self.chi2 is not None and math.isinf(self.chi2),
                "dof": self.dof, "p_value": self.p_value, "low_expected": self.low_expected,
                "segments": [{"segment": dict(zip(self.dim, s.cell, strict=True)),
                              "traffic": s.traffic, "traffic_share": s.traffic_share,
                              "items": s.items, "eval_share": s.eval_share, "ratio": s.ratio}
                             for s in self.shares]}


def _dimension(dim: Dimension, segs: list[dict], tr: Traffic) -> DimensionReport:
    """One dimension's report: pure, from the items' segments and counted traffic."""
    t_counts = tr.counts(dim)
    e_counts = Counter(cell_of(s, dim) for s in segs)
    n_eval = len(segs)
    cells = sorted(set(t_counts) | set(e_counts),
                   key=lambda c: (-t_counts[c], -e_counts[c], [(v is None, v or "") for v in c]))
    shares = []
    for c in cells:
        ts = t_counts[c] / tr.total if tr.total else 0.0
        es = e_counts[c] / n_eval if n_eval else 0.0
        shares.append(Share(c, t_counts[c], ts, e_counts[c], es, es / ts if ts else None))
    labelled = n_eval - e_counts[(None,) * len(dim)]
    if not tr.total or not n_eval:
        return DimensionReport(dim, shares, None, None, 0, None, 0, labelled)
    tvd = total_variation([s.eval_share for s in shares], [s.traffic_share for s in shares])
    stat, dof, p = chi2_goodness_of_fit([s.items for s in shares],
                                        [s.traffic_share for s in shares])
    low = sum(1 for s in shares if 0 < n_eval * s.traffic_share < 5)
    return DimensionReport(dim, shares, tvd, stat, dof, p, low, labelled)


@dataclass
class Comparison:
    items: int
    linked: int
    traffic: Traffic
    dimensions: list[DimensionReport]
    sources: Counter

    def source_shares(self) -> list[tuple[str | None, int, float]]:
        return [(s, n, n / self.items) for s, n in
                sorted(self.sources.items(), key=lambda kv: (-kv[1], kv[0] or ""))]

    def to_dict(self) -> dict:
        return {"items": self.items, "linked_items": self.linked,
                "traffic": {"decisions": self.traffic.total, "since": iso(self.traffic.since),
                            "until": iso(self.traffic.until)},
                "dimensions": [d.to_dict() for d in self.dimensions],
                "sources": [{"source": s, "items": n, "share": sh}
                            for s, n, sh in self.source_shares()]}


def default_dimensions(segs: list[dict], tr: Traffic) -> list[Dimension]:
    """Every key the items or the traffic carry, except keys with more than
    MAX_DEFAULT_VALUES distinct values in traffic (ids, not segments)."""
    cardinality = tr.keys()
    keys = set(cardinality) | {k for s in segs for k in s}
    return [(k,) for k in sorted(keys) if cardinality.get(k, 0) <= MAX_DEFAULT_VALUES]


def comparison_of(segs: list[dict], tr: Traffic, *, by: list[Dimension] | None = None,
                  sources: Iterable[str | None] = (), linked: int = 0) -> Comparison:
    """The comparison of items' segments (as :func:`item_segments` gives them) with counted
    traffic: pure, no ledger."""
    dims = by if by is not None else default_dimensions(segs, tr)
    return Comparison(len(segs), linked, tr, [_dimension(d, segs, tr) for d in dims],
                      Counter(sources))


def compare(db, items: list[EvalItem], *, since: int, until: int,
            by: list[Dimension] | None = None, traffic_counts: Traffic | None = None
            ) -> Comparison:
    """Compare an eval set with the decisions of [since, until). ``traffic_counts`` reuses
    a window already counted (MW303 judges many eval sets against one window)."""
    tr = traffic_counts if traffic_counts is not None else traffic(db, since, until)
    segs, linked = item_segments(db, items)
    return comparison_of(segs, tr, by=by, sources=(it.source for it in items), linked=linked)


def shortfall_p(items: int, n_items: int, traffic_count: int, n_traffic: int) -> float:
    """One-sided p of an eval count this low or lower, were the items and the traffic
    drawn from one population: Fisher's exact test (the hypergeometric lower tail)."""
    from scipy.stats import hypergeom

    return float(min(1.0, hypergeom.cdf(items, n_items + n_traffic, items + traffic_count,
                                        n_items)))


@dataclass(frozen=True)
class Shortfall:
    dim: DimensionReport
    share: Share
    p_value: float   # one-sided exact p of the segment's count
    adjusted: float  # Holm-adjusted over the segments judged
    judged: int      # how many segments were judged in the eval set

    def __iter__(self):  # (dim, share), as callers unpack it
        return iter((self.dim, self.share))


def under_represented(comp: Comparison, *, min_traffic_share: float, min_ratio: float,
                      alpha: float = 1.0) -> list[Shortfall]:
    """Segments carrying at least ``min_traffic_share`` of traffic whose eval share is below
    ``min_ratio`` times that, and whose shortfall is significant at family-wise ``alpha``
    (Holm over every segment judged; 1.0 applies the ratio alone). Items or decisions
    without the key are not a segment, and a dimension no item carries is not judged (the
    items' mix is unknown, not skewed)."""
    judged = []
    for dim in comp.dimensions:
        if not dim.labelled or not comp.traffic.total:
            continue
        for s in dim.shares:
            if None in s.cell or s.traffic_share < min_traffic_share:
                continue
            judged.append((shortfall_p(s.items, comp.items, s.traffic, comp.traffic.total),
                           dim, s))
    m = len(judged)
    order = sorted(range(m), key=lambda i: judged[i][0])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):  # Holm: p_(j) * (m - j), made monotone
        running = max(running, min(1.0, judged[i][0] * (m - rank)))
        adjusted[i] = running
    return [Shortfall(dim, s, p, adjusted[i], m) for i, (p, dim, s) in enumerate(judged)
            if s.eval_share < min_ratio * s.traffic_share and adjusted[i] <= alpha]


def dominant_sources(comp: Comparison, *, sources: Iterable[str] = FEEDBACK_SOURCES,
                     max_share: float = 0.5) -> list[tuple[str, int, float]]:
    """Feedback sources supplying more than ``max_share`` of the items."""
    wanted = set(sources)
    return [(s, n, sh) for s, n, sh in comp.source_shares() if s in wanted and sh > max_share]
