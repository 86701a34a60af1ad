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
dropped. Memory is bounded by the window's rollup rows (keys × buckets for the aggregate,
a handful of rows per block for the per-block rows), never by decisions. :func:`rows`
answers with the same aggregate as grouping :func:`.rollups.window` by the whole key;
``rollup_usage`` reads it
when the guards' view carries a state (``view.rollup_window``: a :class:`Windows`, one
window per span the guards read). Rows a retention run rewrote (:func:`.rollups.refresh`)
are not seen by a state: the watch starts its windows afresh when new blocks hold retired
blocks' records, and at each scheduled backstop.

Kept beside the aggregate, per bucket: MW502's gate sums per (gate, embedder, reranker)
and each gate's latest ``cut_last_at`` with the blocks holding it (:meth:`gates`; a block
enters them once the check's ``until`` has passed its last decision, and is read from its
decisions up to ``until`` before that), and the rows of each block (:meth:`block_rows`:
the window's rollup rows, for the reads that need block numbers — MW105's stale ranges,
MW104's change points, the example decisions of a finding). Rows without gate sums
(written by an older modelward) are read from their block's decisions, like a block
without rollups. What still reads decisions on a trigger: the few blocks those reads name
(a stale range's ends, a change point, a finding's examples, a gate's latest cut), and the
guards that read decisions without rollups (MW303).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from .rollups import GATE_VALUES, KEY, gate_sums
from .schema import chain_blocks, decision_rollups, decisions

HOUR = 3600 * 1_000_000
ALL = -(1 << 62)  # the start of a window over all history
END = 1 << 62  # the end of a window without an end
_NV = 4  # decisions, first_at, last_at, min_id; then the GATE_VALUES
_G = {k: _NV + i for i, k in enumerate(GATE_VALUES)}  # a gate value's place after the key
_SUMS = ("gated", "gate_first_at", "gate_passed", "gate_candidates", "gate_xx", "gate_xn",
         "gate_nn")
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
    # decision blocks read from their decisions (no rollups, or rollups without the gate
    # sums): block -> bucket
    unrolled: dict[int, int] = field(default_factory=dict)
    reads: Reads = field(default_factory=Reads)
    # MW502's gate sums, per bucket after the cut: (gate, embedder, reranker) -> the _SUMS
    # summed (gate_first_at: min), and gate -> [latest cut_last_at, blocks holding it]
    gate_sums: dict[int, dict[tuple, list]] = field(default_factory=dict)
    gate_cuts: dict[int, dict[str, list]] = field(default_factory=dict)
    # blocks not yet in the gate sums: block -> (bucket, last_at, rows); a read until ``t``
    # (the check's now) folds in those whose decisions all are at or before it and reads
    # the others' decisions up to ``t``
    pending: dict[int, tuple[int, int, list]] = field(default_factory=dict)
    gate_until: int | None = None  # the latest ``until`` the gate sums were folded to
    # the rows of each block, per bucket after the cut: bucket -> block -> rows (the
    # window's rollup rows, for the reads that need block numbers: MW105's stale ranges,
    # MW104's change points)
    blocks: dict[int, dict[int, list]] = field(default_factory=dict)
    _cut_memo: tuple | None = field(default=None, repr=False)

    # --- folding ------------------------------------------------------------------------
    def fold(self, conn, since: int | None) -> None:
        """Fold in the blocks sealed since the last fold and drop what left the window.
        ``since``: the window's start (None: all history, nothing is ever dropped); when
        it moves back (the configured window grew) the state starts afresh."""
        since = ALL if since is None else since
        if self.since is not None and since < self.since:
            self.folded, self.aggregate, self.span, self.spill = 0, {}, {}, {}
            self._cut_memo = None
            self.unrolled = {}
            self.gate_sums, self.gate_cuts, self.pending, self.gate_until = {}, {}, {}, None
            self.blocks = {}
        self.since = since
        cut = since // self.bucket
        r, b = decision_rollups.c, chain_blocks.c
        head = self.reads.add(conn.execute(sa.select(sa.func.max(b.number))))[0][0] or 0
        if head > self.folded:
            per_block: dict[int, list] = {}
            for row in self.reads.add(conn.execute(
                    _rolled().where(r.block > self.folded, r.block <= head))):
                per_block.setdefault(row[0], []).append(tuple(row[1:]))
            # rows without gate sums (written by an older modelward): read like blocks
            # without rollups, from their decisions
            old = {n for n, rows in per_block.items()
                   if any(row[len(KEY) + _G["gated"]] is None for row in rows)}
            bare = [n for n in self.reads.add(conn.execute(
                sa.select(b.number).where(b.number > self.folded, b.number <= head,
                                          b.records == 0, b.count > 0)).scalars())
                    if n not in per_block] + sorted(old)
            for n in old:
                del per_block[n]
            per_block.update(self._raw(conn, bare, ALL, None))
            bare_set = set(bare)
            for number, rows in per_block.items():
                self._add_block(number, rows, cut, number in bare_set)
            self.folded = head
        # buckets that left the window: nothing of theirs is read again
        for old in [k for k in self.aggregate if k <= cut]:
            del self.aggregate[old]
        for held in (self.gate_sums, self.gate_cuts, self.blocks):
            for old in [k for k in held if k <= cut]:
                del held[old]
        for number in [n for n, (bk, _l, _r) in self.pending.items() if bk <= cut]:
            del self.pending[number]
        for old in [k for k in self.span if k < cut]:
            del self.span[old]
        for number in [n for n, (_bk, last) in self.spill.items() if last < since]:
            del self.spill[number]
            self.unrolled.pop(number, None)
        self.unrolled = {n: bk for n, bk in self.unrolled.items() if n in self.spill or bk >= cut}

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
            self.unrolled[number] = bk
        span = self.span.setdefault(bk, [number, number])
        span[0], span[1] = min(span[0], number), max(span[1], number)
        if bk <= cut:
            return  # read from the database while the window's start is in its bucket
        agg = self.aggregate.setdefault(bk, {})
        for row in rows:
            _merge(agg, row[:n_key], row[n_key:n_key + _NV])
        self.pending[number] = (bk, last, rows)
        self.blocks.setdefault(bk, {})[number] = rows

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
        n_key = len(KEY)
        for rows in self._cut_blocks(conn, since, cut, END).values():
            for row in rows:
                _merge(total, row[:n_key], row[n_key:n_key + _NV])
        return [(*key, *values) for key, values in total.items()]

    def gates(self, conn, since: int | None, until: int | None):
        """MW502's reads of the window from ``since`` to ``until``: (per (gate, embedder,
        reranker): the summed gate values, per gate: [its latest ``cut_last_at``, the
        blocks holding it]) — what :func:`.rollup_usage.gate_substrates` and
        ``latest_cut_blocks`` sum in SQL; None when ``until`` moved back (read in SQL)."""
        until = END if until is None else until
        if self.gate_until is not None and until < self.gate_until:
            return None
        self.fold(conn, since)
        since = ALL if since is None else since
        cut = since // self.bucket
        late = []
        for number, (bk, last, rows) in sorted(self.pending.items()):
            if last > until:
                late.append(number)  # decisions after ``until``: read up to it
                continue
            del self.pending[number]
            sums = self.gate_sums.setdefault(bk, {})
            cuts = self.gate_cuts.setdefault(bk, {})
            _gate_block(sums, cuts, number, rows)
        self.gate_until = until
        sums_total: dict[tuple, list] = {}
        cuts_total: dict[str, list] = {}
        for bk, sums in self.gate_sums.items():
            if bk > cut:
                for key, values in sums.items():
                    _merge_sums(sums_total, key, values)
                for gate, (at, blocks) in self.gate_cuts[bk].items():
                    _merge_cut(cuts_total, gate, at, blocks)
        blocks = self._cut_blocks(conn, since, cut, until)
        blocks.update(self._raw(conn, late, since, until))
        for number, rows in blocks.items():
            _gate_block(sums_total, cuts_total, number, rows)
        return sums_total, cuts_total

    def block_rows(self, conn, since: int | None) -> list[tuple]:
        """The window's rows per block (block, ``KEY``, decisions, first_at, last_at,
        min_id, :data:`.rollups.GATE_VALUES`): the rows of :func:`.rollups.window` with
        ``gates=True``, from memory but for the bucket the window's start cuts."""
        self.fold(conn, since)
        since = ALL if since is None else since
        cut = since // self.bucket
        out = [(number, *row) for bk, held in self.blocks.items() if bk > cut
               for number, rows in held.items() for row in rows]
        out.extend((number, *row) for number, rows in
                   self._cut_blocks(conn, since, cut, END).items() for row in rows)
        return out

    def _rolled_rows(self, conn, where) -> dict[int, list]:
        per_block: dict[int, list] = {}
        for row in self.reads.add(conn.execute(_rolled().where(where))):
            per_block.setdefault(row[0], []).append(tuple(row[1:]))
        return per_block

    def _raw(self, conn, blocks, since: int, until: int | None) -> dict[int, list]:
        """The rows of ``blocks`` aggregated from their decisions at or after ``since`` (and
        at or before ``until``), as rollup rows with their gate sums."""
        d = decisions.c
        out: dict[int, list] = {}
        for part in _chunks(sorted(set(blocks))):
            where = [d.block.in_(part)]
            if since != ALL:
                where.append(d.at >= since)
            if until is not None and until != END:
                where.append(d.at <= until)
            for row in self.reads.add(conn.execute(
                    sa.select(d.block, *[d[k] for k in KEY], sa.func.count(), sa.func.min(d.at),
                              sa.func.max(d.at), sa.func.min(d.id), *gate_sums())
                    .where(*where).group_by(d.block, *[d[k] for k in KEY]))):
                out.setdefault(row[0], []).append(tuple(row[1:]))
        return out

    def _cut_blocks(self, conn, since: int, cut: int, until: int) -> dict[int, list]:
        """The rows (per block) of the bucket the window's start cuts through and of the
        earlier buckets' blocks reaching into the window, at or before ``until`` (read once
        per fold, window start and end: the aggregate and the per-block rows share it)."""
        memo = (self.folded, since, until)
        if self._cut_memo is not None and self._cut_memo[0] == memo:
            return dict(self._cut_memo[1])
        out = self._read_cut(conn, since, cut, until)
        self._cut_memo = (memo, out)
        return dict(out)

    def _read_cut(self, conn, since: int, cut: int, until: int) -> dict[int, list]:
        r = decision_rollups.c
        n_key = len(KEY)
        span = self.span.get(cut)
        early = [n for n, (bk, last) in self.spill.items() if bk < cut and last >= since]
        if span is None and not early:
            return {}
        where = [r.block.in_(early)] if early else []
        if span is not None:
            where.append(r.block.between(span[0], span[1]))
        per_block = self._rolled_rows(conn, sa.or_(*where))
        early_set = set(early)
        # (a block of another bucket may be numbered inside this one's span)
        raw: list[int] = [n for n, bk in self.unrolled.items() if n in early_set or bk == cut]
        out: dict[int, list] = {}
        for number, rows in per_block.items():
            first = min(row[n_key + 1] for row in rows)
            if number not in early_set and first // self.bucket != cut:
                continue  # a block of another bucket numbered inside this one's span
            if number in self.unrolled:
                continue  # read from its decisions (its rows lack the gate sums)
            if any(row[n_key + 1] < since <= row[n_key + 2]
                   or row[n_key + 1] <= until < row[n_key + 2] for row in rows):
                raw.append(number)  # straddles the window's start or end: its decisions
                continue
            kept = [row for row in rows if row[n_key + 1] >= since and row[n_key + 2] <= until]
            if kept:
                out[number] = kept
        out.update(self._raw(conn, raw, since, until))
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
    n, first, last, min_id = values[:_NV]
    have = into.get(key)
    if have is None:
        into[key] = [int(n), first, last, min_id]
    else:
        have[0] += int(n)
        have[1], have[2], have[3] = min(have[1], first), max(have[2], last), min(have[3], min_id)


def _rolled() -> sa.Select:
    r = decision_rollups.c
    return sa.select(r.block, *[r[k] for k in KEY], r.count, r.first_at, r.last_at, r.min_id,
                     *[r[k] for k in GATE_VALUES])


def _gate_block(sums: dict, cuts: dict, number: int, rows) -> None:
    """Add a block's rows to the gate sums and latest cuts (``rows``: key, values)."""
    n_key = len(KEY)
    alias, emb, rer = KEY.index("alias"), KEY.index("embedder_digest"), KEY.index(
        "reranker_digest")
    for row in rows:
        gate = row[alias] or ""
        gated = row[n_key + _G["gated"]]
        if gated:
            _merge_sums(sums, (gate, row[emb], row[rer]),
                        [row[n_key + _G[k]] for k in _SUMS])
        at = row[n_key + _G["cut_last_at"]]
        if at is not None:
            _merge_cut(cuts, gate, at, {number})


def _merge_sums(into: dict, key: tuple, values) -> None:
    have = into.get(key)
    if have is None:
        into[key] = [int(v) if i != 1 else v for i, v in enumerate(values)]
    else:
        for i, v in enumerate(values):
            have[i] = min(have[i], v) if i == 1 else have[i] + int(v)


def _merge_cut(into: dict, gate: str, at: int, blocks) -> None:
    have = into.get(gate)
    if have is None or at > have[0]:
        into[gate] = [at, set(blocks)]
    elif at == have[0]:
        have[1] |= blocks


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


def gates(conn, since: int | None, until: int | None):
    """MW502's window sums from the state ``conn`` carries (:meth:`WindowRollups.gates`),
    once per view, window start and end; None: read the rollups in SQL."""
    state = getattr(conn, "rollup_window", None)
    if state is None:
        return None
    cache = conn.__dict__.setdefault("_rollup_window_gates", {})
    if (since, until) not in cache:
        if isinstance(state, Windows):
            state = state.window(conn, since)
        cache[since, until] = state.gates(conn, since, until)
    return cache[since, until]


def block_rows(conn, since: int | None) -> list[tuple] | None:
    """The window's rows per block from the state ``conn`` carries
    (:meth:`WindowRollups.block_rows`), once per view and window start; None: in SQL."""
    state = getattr(conn, "rollup_window", None)
    if state is None:
        return None
    cache = conn.__dict__.setdefault("_rollup_window_blocks", {})
    if since not in cache:
        if isinstance(state, Windows):
            state = state.window(conn, since)
        cache[since] = state.block_rows(conn, since)
    return cache[since]
