"""Stratified eval sets drawn from production decisions (``modelward evalset rebuild``).

Cells are the combinations of the stratify keys' values. Each cell gets a share of the
requested size proportional to its *traffic* (all decisions in the window), rounded by
largest remainder (Hamilton's method: floors first, then one more item to the cells with
the largest fractional parts, ties to the larger cell, then by cell). Only decisions
whose input text is still stored can become items; when a cell has fewer of those than
its allocation (text erased, or never kept), it gives what it has and the shortfall is
reallocated over the other cells the same way, and the report says so: allocating by
eligible decisions instead would silently shrink exactly the segments whose text is
erased more often.

Within a cell, the sample is the decisions with the smallest keyed hash
``blake2b(seed, id)``: a uniform sample without replacement that depends only on the seed
and the set of decisions, never on row order, and needs memory for the sample only.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ...errors import ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...ledger import segments as ledger_segments
from ...ledger.engine import Store
from ...timefmt import iso
from .compare import cell_of


def _cell_order(cell: tuple) -> list:
    return [(v is None, v or "") for v in cell]


def allocate(size: int, weights: dict[tuple, int], caps: dict[tuple, int] | None = None
             ) -> dict[tuple, int]:
    """Split ``size`` over cells in proportion to ``weights`` by largest remainder, giving
    no cell more than its cap; what a capped cell cannot take goes to the others."""
    caps = caps if caps is not None else {c: size for c in weights}
    alloc = {c: 0 for c in weights}
    remaining = min(size, sum(caps.get(c, 0) for c in weights if weights[c] > 0))
    active = [c for c in weights if weights[c] > 0 and caps.get(c, 0) > 0]
    while remaining > 0 and active:
        total = sum(weights[c] for c in active)
        share = {c: divmod(remaining * weights[c], total) for c in active}  # exact integers
        give = {c: q for c, (q, _r) in share.items()}
        left = remaining - sum(give.values())
        order = sorted(active, key=lambda c: (-share[c][1], -weights[c], _cell_order(c)))
        for c in order[:left]:
            give[c] += 1
        taken = 0
        for c in active:
            take = min(give[c], caps[c] - alloc[c])
            alloc[c] += take
            taken += take
        remaining -= taken
        active = [c for c in active if alloc[c] < caps[c]]
    return alloc


@dataclass
class Cell:
    cell: tuple
    traffic: int = 0
    eligible: int = 0  # decisions whose input text is stored
    ideal: int = 0  # allocation had every decision had its text
    items: int = 0


@dataclass
class Rebuild:
    name: str
    stratify: list[str]
    seed: int
    since: int
    until: int
    window: str
    cells: list[Cell] = field(default_factory=list)
    path: Path | None = None
    digest: str | None = None
    created: bool = False

    @property
    def source_decisions(self) -> int:
        return sum(c.traffic for c in self.cells)

    @property
    def eligible(self) -> int:
        return sum(c.eligible for c in self.cells)

    @property
    def items(self) -> int:
        return sum(c.items for c in self.cells)

    def meta(self) -> dict:
        return {"method": "stratified-proportional", "window": self.window,
                "since": iso(self.since), "until": iso(self.until), "stratify": self.stratify,
                "seed": self.seed, "source_decisions": self.source_decisions,
                "eligible_decisions": self.eligible, "items": self.items,
                "cells": [self._cell(c) for c in self.cells]}

    def _cell(self, c: Cell) -> dict:
        return {"segment": dict(zip(self.stratify, c.cell, strict=True)), "traffic": c.traffic,
                "eligible": c.eligible, "ideal": c.ideal, "items": c.items}

    def to_dict(self) -> dict:
        return {"digest": self.digest, "path": str(self.path) if self.path else None,
                "name": self.name, "created": self.created, **self.meta()}


def _population(conn, since: int, until: int, stratify: list[str]) -> dict[tuple, Cell]:
    cells: dict[tuple, Cell] = {}
    for segs, n, with_text in ledger_segments.counts_with_text(conn, since, until):
        key = cell_of(segs, tuple(stratify))
        c = cells.setdefault(key, Cell(key))
        c.traffic += n
        c.eligible += with_text
    return cells


def _sample(conn, since, until, stratify, alloc: dict[tuple, int], seed: int) -> list[str]:
    salt = seed.to_bytes(8, "big")
    heaps: dict[tuple, list] = {c: [] for c, k in alloc.items() if k > 0}
    rows = ledger_segments.with_text(conn, since, until)
    dim = tuple(stratify)
    cells: dict[str | None, tuple] = {}  # segments text -> cell: few distinct texts, parse once
    blake2b = hashlib.blake2b
    for did, segs in rows:
        cell = cells.get(segs)
        if cell is None:
            if len(cells) >= 10_000:  # segments unique per decision (an id in them): bounded
                cells.clear()
            cell = cells[segs] = cell_of(orjson.loads(segs) if segs else {}, dim)
        heap = heaps.get(cell)
        if heap is None:
            continue
        rank = int.from_bytes(blake2b(did.encode(), key=salt, digest_size=8).digest())
        if len(heap) < alloc[cell]:
            heapq.heappush(heap, (-rank, did))
        elif -heap[0][0] > rank:
            heapq.heapreplace(heap, (-rank, did))
    return sorted(did for heap in heaps.values() for _r, did in heap)


def rebuild(store: Store, *, size: int, stratify: list[str], since: int, until: int,
            window: str, name: str, out: Path, seed: int | None = None) -> Rebuild:
    """Draw the sample, write it to ``out`` (JSON lines) and register it as an evalset."""
    if size < 1:
        raise ValidationError(f"must be at least 1, got {size}", field="--size")
    if len(set(stratify)) != len(stratify):
        raise ValidationError("names a key twice", field="--stratify")
    seed = secrets.randbits(63) if seed is None else seed
    if not 0 <= seed < 2 ** 64:
        raise ValidationError(f"must be a whole number from 0 to 2**64-1, got {seed}",
                              field="--seed")
    result = Rebuild(name, list(stratify), seed, since, until, window)
    items: list[dict] = []
    with store.read() as conn:
        cells = _population(conn, since, until, stratify)
        weights = {c: x.traffic for c, x in cells.items()}
        caps = {c: x.eligible for c, x in cells.items()}
        if not sum(caps.values()):
            raise ValidationError(
                f"no decision between {iso(since)} and {iso(until)} has its input text stored "
                f"({sum(weights.values())} decisions in the window)", field="--window",
                hint="record input_text with the decisions, or widen --window")
        ideal = allocate(size, weights)
        alloc = allocate(size, weights, caps)
        chosen = _sample(conn, since, until, stratify, alloc, seed)
        for did, segs, text in ledger_segments.inputs_of(conn, chosen):
            items.append({"id": did, "input": text, "source": "sampled", "decision_id": did,
                          "segments": segs})
    got = Counter(cell_of(it["segments"], tuple(stratify)) for it in items)
    for c, x in cells.items():  # counted from the items: a text erased meanwhile is gone
        x.ideal, x.items = ideal.get(c, 0), got[c]
    result.cells = sorted(cells.values(), key=lambda x: (-x.traffic, _cell_order(x.cell)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"".join(orjson.dumps(it, option=orjson.OPT_SORT_KEYS) + b"\n"
                                 for it in items))
    except OSError as exc:
        raise ValidationError(f"cannot write {out}: {exc.strerror}", field="--out") from None
    reg = ledger_artifacts.register_path(store, "evalset", out, name=name, meta=result.meta())
    result.path, result.digest, result.created = out, reg.artifact.digest, reg.created
    return result
