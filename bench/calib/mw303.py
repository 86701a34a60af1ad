"""MW303 under-represented segments: eval sets drawn uniformly at random from traffic
(null) and sets short of one segment (power).

Traffic carries three segment keys with realistic, unequal mixes (and some decisions
without a topic). Each case draws a window of traffic, then an eval set, and judges it by
:func:`modelward.evals.representativeness.compare.under_represented` with MW303's default
settings, over every key (the guard's default dimensions).
"""

from __future__ import annotations

import itertools
import random

import numpy as np

from modelward.evals.representativeness import compare as rep
from modelward.guards import unrepresentative_evalset

from . import Scenario

DEFAULTS = {s.name: s.default for s in unrepresentative_evalset.OPTIONS}
MIX = {
    "tier": {"free": 0.58, "pro": 0.30, "enterprise": 0.12},
    "topic": {"billing": 0.28, "api": 0.22, "bugs": 0.20, "sso": 0.12, "other": 0.13,
              None: 0.05},
    "region": {"us": 0.5, "eu": 0.35, "apac": 0.15},
}


def _cells(mix: dict) -> tuple[list[dict], np.ndarray]:
    """Every combination of the keys' values (independent keys) and its probability."""
    cells, probs = [], []
    for combo in itertools.product(*(list(v.items()) for v in mix.values())):
        cells.append({k: v for k, (v, _p) in zip(mix, combo, strict=True) if v is not None})
        probs.append(float(np.prod([p for _v, p in combo])))
    probs = np.asarray(probs)
    return cells, probs / probs.sum()


CELLS, PROBS = _cells(MIX)


def _traffic(counts: np.ndarray) -> rep.Traffic:
    tr = rep.Traffic(0, 1)
    for cell, n in zip(CELLS, counts.tolist(), strict=True):
        if n:
            tr.combos.append((cell, n))
            tr.total += n
    return tr


def _items(counts: np.ndarray) -> list[dict]:
    return [cell for cell, n in zip(CELLS, counts.tolist(), strict=True) for _ in range(n)]


def case(items: int, window: int = 5000, *, independent: bool = False,
         short: tuple[str, str, float] | None = None, feedback: int = 0):
    """``items`` drawn without replacement from a window of ``window`` decisions (or,
    ``independent``, from the same mix but not from the window); ``short`` = (key, value,
    factor) multiplies one segment's weight among the items (planted under-representation);
    ``feedback`` of the items were curated from thumbs-up feedback (the rest are
    ``sampled``, as ``evalset rebuild`` records them). The decision is the guard's whole
    one: an under-represented segment or a dominant feedback source."""
    probs = PROBS
    if short is not None:
        key, value, factor = short
        probs = PROBS * np.array([factor if c.get(key) == value else 1.0 for c in CELLS])
        probs = probs / probs.sum()

    def fires(rng: random.Random) -> bool:
        gen = np.random.default_rng(rng.getrandbits(64))
        window_counts = gen.multinomial(window, PROBS)
        if short is None and not independent:
            drawn = gen.multivariate_hypergeometric(window_counts, items)
        else:
            drawn = gen.multinomial(items, probs)
        sources = ["thumbs_up"] * feedback + ["sampled"] * (items - feedback)
        comp = rep.comparison_of(_items(drawn), _traffic(window_counts), sources=sources)
        return bool(rep.under_represented(comp, min_traffic_share=DEFAULTS["min_traffic_share"],
                                          min_ratio=DEFAULTS["min_ratio"],
                                          alpha=DEFAULTS["alpha"])
                    or rep.dominant_sources(comp, sources=DEFAULTS["feedback_sources"],
                                            max_share=DEFAULTS["max_source_share"]))
    return fires


NOMINAL = DEFAULTS["alpha"]
SCENARIOS = [
    Scenario("MW303", "random sample of traffic, 20 items", NOMINAL, case(20), reps=5000,
             tags=("small arms",)),
    Scenario("MW303", "random sample of traffic, 40 items", NOMINAL, case(40), reps=5000,
             tags=("small arms",)),
    Scenario("MW303", "random sample of traffic, 200 items", NOMINAL, case(200), reps=5000),
    Scenario("MW303", "same mix, not from the window: 40 items vs 150 decisions", NOMINAL,
             case(40, window=150, independent=True), reps=5000, tags=("small arms",)),
    Scenario("MW303", "random sample of traffic, 40 items, 20 of them from thumbs-up feedback",
             NOMINAL, case(40, feedback=20), reps=5000),
    Scenario("MW303", "random sample of traffic, 40 items, 21 of them from thumbs-up feedback",
             NOMINAL, case(40, feedback=21), effect="feedback share 52.5% (limit 50%)",
             reps=300),
    Scenario("MW303", "enterprise (12%) at a quarter of its share, 200 items", NOMINAL,
             case(200, short=("tier", "enterprise", 0.25)), effect="segment share x0.25",
             reps=1000),
    Scenario("MW303", "pro (30%) at a third of its share, 40 items", NOMINAL,
             case(40, short=("tier", "pro", 1 / 3)), effect="segment share x0.33", reps=1000),
    Scenario("MW303", "pro (30%) at a third of its share, 200 items", NOMINAL,
             case(200, short=("tier", "pro", 1 / 3)), effect="segment share x0.33", reps=1000),
]
