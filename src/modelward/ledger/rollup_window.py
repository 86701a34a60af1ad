"""The window's rollups kept in memory by a long-running process (``modelward watch``).

A guard run over a window from ``since`` reads the rollup rows of every decision block in
it (:func:`.rollups.window`). A process that runs the guards again and again (the watch
loop) keeps instead, in a :class:`WindowRollups`, the window's rollup aggregate per time
bucket (an hour by default) keyed like the rollups (alias, digests, process, vendor id →
decisions, first and last ``at``, smallest id), and on each run reads from the database only:

- the rollup rows of the blocks sealed since the last run (``block > folded``), and the
  decisions of any new decision block that has no rollups;
- the rollup rows of the bucket the window's start cuts through (and of the rare blocks of
  earlier buckets that reach into the window), and the decisions of the blocks whose rows
  straddle the start — exactly what :func:`.rollups.window` reads raw.

A block belongs to the bucket of its earliest decision; buckets that left the window are
dropped. Memory is bounded by keys × buckets (plus two block numbers per bucket and the few
blocks that cross a bucket's end), never by decisions. :func:`rows` answers with the same
aggregate as grouping :func:`.rollups.window` by the whole key; ``rollup_usage`` reads it
when the guards' view carries a state (``view.rollup_window``: a :class:`Windows`, one
window per span the guards read). Rows a retention run rewrote (:func:`.rollups.refresh`)
are not seen by a state: the watch starts its windows afresh when new blocks hold retired
blocks' records, and at each scheduled backstop.

What still reads the window in SQL on a trigger: the few reads that need block numbers —
MW105's count inside stale ranges (the rollup rows of the aliases that moved), MW104's
change points (only for hosted models that reported two ids) and the example decisions of
a finding (``example_blocks``) — and the guards that read decisions without rollups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from .rollups import KEY
from .schema import chain_blocks, decision_rollups, decisions

HOUR = 3600 * 1_000_000
ALL = -(1 << 62)  # the start of a window over all history
_IN = 500  # block numbers per IN list


@dataclass
class Reads:
    """What the state read from the database (for the tests and the bench)."""

    statements: int = 0
    rows: int = 0

    def add(self, rows) -> list:
        rows = list(rows)
        self.statements += 1
        self.rows += len(rows)
        return rows


@dataclass
class WindowRollups:
    bucket: int = HOUR
    folded: int = 0  # the newest block folded in
    since: int | None = None  # the window start of the last fold (never moves back)
    # bucket -> key -> [decisions, first_at, last_at, min_id]: buckets after the cut only
    aggregate: dict[int, dict[tuple, list]] = field(default_factory=dict)
    span: dict[int, list[int]] = field(default_factory=dict)  # bucket -> [lo, hi] block
    # blocks whose decisions reach past their bucket's end: block -> (bucket, last_at)
    spill: dict[int, tuple[int, int]] = field(default_factory=dict)
    unrolled: set[int] = field(default_factory=set)  # decision blocks without rollups kept
    reads: Reads = field(default_factory=Reads)

    # --- folding ------------------------------------------------------------------------
    def fold(self, conn, since: int | None) -> None:
        """Fold in the blocks sealed since the last fold and drop what left the window.
        ``since``: the window's start (None: all history, nothing is ever dropped); when
        it moves back (the configured window grew) the state starts afresh."""
        since = ALL if since is None else since
        if self.since is not None and since < self.since:
            self.folded, self.aggregate, self.span, self.spill = 0, {}, {}, {}
            self.unrolled = set()
        self.since = since
        cut = since // self.bucket
        r, b = decision_rollups.c, chain_blocks.c
        head = self.reads.add(conn.execute(sa.select(sa.func.max(b.number))))[0][0] or 0
        if head > self.folded:
            per_block: dict[int, list] = {}
            for row in self.reads.add(conn.execute(
                    sa.select(r.block, *[r[k] for k in KEY], r.count, r.first_at, r.last_at,
                              r.min_id)
                    .where(r.block > self.folded, r.block <= head))):
                per_block.setdefault(row[0], []).append(tuple(row[1:]))
            bare = [n for n in self.reads.add(conn.execute(
                sa.select(b.number).where(b.number > self.folded, b.number <= head,
                                          b.records == 0, b.count > 0)).scalars())
                    if n not in per_block]
            for part in _chunks(bare):
                d = decisions.c
                for row in self.reads.add(conn.execute(
                        sa.select(d.block, *[d[k] for k in KEY], sa.func.count(),
                                  sa.func.min(d.at), sa.func.max(d.at), sa.func.min(d.id))
                        .where(d.block.in_(part)).group_by(d.block, *[d[k] for k in KEY]))):
                    per_block.setdefault(row[0], []).append(tuple(row[1:]))
            bare_set = set(bare)
            for number, rows in per_block.items():
                self._add_block(number, rows, cut, number in bare_set)
            self.folded = head
        # buckets that left the window: nothing of theirs is read again
        for old in [k for k in self.aggregate if k <= cut]:
            del self.aggregate[old]
        for old in [k for k in self.span if k < cut]:
            del self.span[old]
        for number in [n for n, (_bk, last) in self.spill.items() if last < since]:
            del self.spill[number]
            self.unrolled.discard(number)
        self.unrolled = {n for n in self.unrolled if n in self.spill or any(
            lo <= n <= hi for lo, hi in self.span.values())}

    def _add_block(self, number: int, rows: list[tuple], cut: int, bare: bool) -> None:
        n_key = len(KEY)
        first = min(row[n_key + 1] for row in rows)
        last = max(row[n_key + 2] for row in rows)
        bk = first // self.bucket
        if last >= (bk + 1) * self.bucket:
            if last < self.since:
                return  # wholly before the window
            self.spill[number] = (bk, last)
        elif bk < cut:
            return  # wholly before the window
        if bare:
            self.unrolled.add(number)
        span = self.span.setdefault(bk, [number, number])
        span[0], span[1] = min(span[0], number), max(span[1], number)
        if bk <= cut:
            return  # read from the database while the window's start is in its bucket
        agg = self.aggregate.setdefault(bk, {})
        for row in rows:
            _merge(agg, row[:n_key], row[n_key:])

    # --- answering -----------------------------------------------------------------------
    def rows(self, conn, since: int | None) -> list[tuple]:
        """The window's rows (``KEY`` columns, decisions, first_at, last_at, min_id), one per
        key: the same aggregate as :func:`.rollups.window` grouped by every key column."""
        self.fold(conn, since)
        since = ALL if since is None else since
        cut = since // self.bucket
        total: dict[tuple, list] = {}
        for bk, agg in self.aggregate.items():
            if bk > cut:
                for key, values in agg.items():
                    _merge(total, key, values)
        for key, values in self._cut_rows(conn, since, cut).items():
            _merge(total, key, values)
        return [(*key, *values) for key, values in total.items()]

    def _cut_rows(self, conn, since: int, cut: int) -> dict[tuple, list]:
        r, d = decision_rollups.c, decisions.c
        n_key = len(KEY)
        out: dict[tuple, list] = {}
        span = self.span.get(cut)
        early = [n for n, (bk, last) in self.spill.items() if bk < cut and last >= since]
        if span is None and not early:
            return out
        where = [r.block.in_(early)] if early else []
        if span is not None:
            where.append(r.block.between(span[0], span[1]))
        per_block: dict[int, list] = {}
        for row in self.reads.add(conn.execute(
                sa.select(r.block, *[r[k] for k in KEY], r.count, r.first_at, r.last_at,
                          r.min_id).where(sa.or_(*where)))):
            per_block.setdefault(row[0], []).append(tuple(row[1:]))
        early_set = set(early)
        raw: list[int] = [n for n in self.unrolled if n in early_set or (
            span is not None and span[0] <= n <= span[1])]
        for number, rows in per_block.items():
            first = min(row[n_key + 1] for row in rows)
            if number not in early_set and first // self.bucket != cut:
                continue  # a block of another bucket numbered inside this one's span
            if any(row[n_key + 1] < since <= row[n_key + 2] for row in rows):
                raw.append(number)  # straddles the window's start: read its decisions
                continue
            for row in rows:
                if row[n_key + 1] >= since:
                    _merge(out, row[:n_key], row[n_key:])
        for part in _chunks(sorted(set(raw))):
            for row in self.reads.add(conn.execute(
                    sa.select(*[d[k] for k in KEY], sa.func.count(), sa.func.min(d.at),
                              sa.func.max(d.at), sa.func.min(d.id))
                    .where(d.block.in_(part), d.at >= since)
                    .group_by(d.block, *[d[k] for k in KEY]))):
                _merge(out, tuple(row[:n_key]), tuple(row[n_key:]))
        return out

    def size(self) -> int:
        """Keys held (summed over buckets): what the state's memory follows."""
        return sum(len(a) for a in self.aggregate.values())


class Windows:
    """The in-memory windows of one process, one per window span: guards read windows of
    different starts in one run (MW102 reads from the retention cutoff, the others from
    ``check.window``), each of which slides with ``now``. A window is found by its span
    (``now - since``; all history is its own); the least recently used beyond ``keep`` is
    dropped. All share one :class:`Reads`."""

    def __init__(self, bucket: int = HOUR, keep: int = 4) -> None:
        self.bucket, self.keep = bucket, keep
        self.reads = Reads()
        self._by_span: dict = {}

    def window(self, conn, since: int | None) -> WindowRollups:
        now = getattr(conn, "now", None)
        span = "all" if since is None else (now - since if now is not None else "fixed")
        w = self._by_span.pop(span, None)
        if w is None:
            w = WindowRollups(bucket=self.bucket, reads=self.reads)
        self._by_span[span] = w  # most recently used last
        while len(self._by_span) > self.keep:
            del self._by_span[next(iter(self._by_span))]
        return w

    @property
    def folded(self) -> int:
        return max((w.folded for w in self._by_span.values()), default=0)

    def size(self) -> int:
        return sum(w.size() for w in self._by_span.values())


def _merge(into: dict, key: tuple, values) -> None:
    n, first, last, min_id = values
    have = into.get(key)
    if have is None:
        into[key] = [int(n), first, last, min_id]
    else:
        have[0] += int(n)
        have[1], have[2], have[3] = min(have[1], first), max(have[2], last), min(have[3], min_id)


def _chunks(items: list) -> list[list]:
    return [items[i:i + _IN] for i in range(0, len(items), _IN)]


def rows(conn, since: int | None) -> list[tuple] | None:
    """The window's rows from the state ``conn`` (a guards' view) carries, once per view and
    window start; None when it carries none: read the rollups in SQL then."""
    state = getattr(conn, "rollup_window", None)
    if state is None:
        return None
    cache = conn.__dict__.setdefault("_rollup_window_rows", {})
    if since not in cache:
        if isinstance(state, Windows):
            state = state.window(conn, since)
        cache[since] = state.rows(conn, since)
    return cache[since]
