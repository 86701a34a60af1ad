"""The aggregate reads of :mod:`.usage`, answered from per-block rollups (:mod:`.rollups`).

Same arguments, same results as their raw counterparts (the tests compare both on SQLite
and PostgreSQL); ``usage`` dispatches here when called with ``rollups=True``. Each reads
the rollup rows of the window (thousands where the decisions are millions) and touches
decisions only where a rollup cannot answer: blocks the window's start cuts through, the
few blocks a stale range's ends cut through (MW105), the hosted models whose reported
id changed in the window (MW104's change points), and the blocks holding each gate's
latest threshold (MW502's stale cut).
"""

from __future__ import annotations

import bisect
from collections import namedtuple
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import rollup_window, rollups
from .decision_fields import DIGEST_FIELDS
from .schema import alias_events, artifacts

_BLOCKS = 500  # blocks per IN list
_ROWS = 2000  # rollup rows per fetch of a streamed read
_AT = {k: i for i, k in enumerate(rollups.KEY)}  # column of a key field in a window row
_N = len(rollups.KEY)  # then decisions, first_at, last_at, min_id
# a per-block row of the in-memory window: block, key, n, first_at, last_at, min_id, gates
_B = {k: 1 + i for i, k in enumerate(rollups.KEY)}
_BG = {k: 1 + _N + 4 + i for i, k in enumerate(rollups.GATE_VALUES)}
_BN, _BF, _BL = 1 + _N, 2 + _N, 3 + _N


def _kept(conn, since):
    """The window's rows from a watch process's in-memory state (``rollup_window``), or
    None: read the rollups in SQL."""
    return rollup_window.rows(conn, since)


def _sum(rows, key) -> dict[tuple, list]:
    out: dict[tuple, list] = {}
    for row in rows:
        k = key(row)
        have = out.get(k)
        if have is None:
            out[k] = [row[_N], row[_N + 1], row[_N + 2], row[_N + 3]]
        else:
            have[0] += row[_N]
            have[1], have[2] = min(have[1], row[_N + 1]), max(have[2], row[_N + 2])
            have[3] = min(have[3], row[_N + 3])
    return out


def _vendor_digests(conn, digests) -> set[str]:
    digests = sorted({d for d in digests if d is not None})
    out: set[str] = set()
    for i in range(0, len(digests), _BLOCKS):
        out.update(conn.execute(sa.select(artifacts.c.digest).where(
            artifacts.c.digest.in_(digests[i:i + _BLOCKS]),
            artifacts.c.payload == "vendor")).scalars())
    return out


Served = namedtuple("Served", "digest vendor_model_id n first last min_id")


def _grouped(conn, src, keys, *, where=()) -> list:
    cols = [src.c[k] for k in keys]
    return conn.execute(sa.select(*cols, sa.func.sum(src.c.n), sa.func.min(src.c.first_at),
                                  sa.func.max(src.c.last_at), sa.func.min(src.c.min_id))
                        .where(*where).group_by(*cols)).all()


def digest_usage(conn: Connection, *, since: int | None) -> dict[tuple[str, str], list]:
    kept = _kept(conn, since)
    if kept is not None:
        return fold_usage((tuple(row[_AT[f]] for f in DIGEST_FIELDS), row[_N], row[_N + 1],
                           row[_N + 2]) for row in kept)
    src = rollups.window(conn, since)
    return fold_usage((row[:len(DIGEST_FIELDS)], int(row[len(DIGEST_FIELDS)]), row[-3], row[-2])
                      for row in _grouped(conn, src, DIGEST_FIELDS))


def fold_usage(groups) -> dict[tuple[str, str], list]:
    """(field, digest) -> [decisions, first, last] from (digests per field, count, first,
    last) groups: the one fold of the raw and the rollup paths."""
    usage: dict[tuple[str, str], list] = {}
    for digests, n, first, last in groups:
        for field, digest in zip(DIGEST_FIELDS, digests, strict=True):
            if digest is None:
                continue
            u = usage.get((field, digest))
            if u is None:
                usage[(field, digest)] = [n, first, last]
            else:
                u[0], u[1], u[2] = u[0] + n, min(u[1], first), max(u[2], last)
    return usage


def references(conn: Connection, *, since: int | None) -> dict[str, tuple[int, int, int]]:
    """Digest -> (decisions, last, first), as ``retention.decision_references`` counts."""
    out: dict[str, list] = {}
    kept = _kept(conn, since)
    if kept is not None:
        groups = [(*[row[_AT[f]] for f in DIGEST_FIELDS], row[_N], row[_N + 1], row[_N + 2],
                   row[_N + 3]) for row in kept]
    else:
        groups = _grouped(conn, rollups.window(conn, since), DIGEST_FIELDS)
    for row in groups:
        n, first, last = int(row[len(DIGEST_FIELDS)]), row[-3], row[-2]
        for digest in set(row[:len(DIGEST_FIELDS)]):
            if digest is None:
                continue
            u = out.get(digest)
            if u is None:
                out[digest] = [n, last, first]
            else:
                u[0], u[1], u[2] = u[0] + n, max(u[1], last), min(u[2], first)
    return {d: tuple(v) for d, v in out.items()}


def prompt_model_usage(conn: Connection, *, since: int | None) -> list[tuple]:
    kept = _kept(conn, since)
    if kept is not None:
        p, m = _AT["prompt_digest"], _AT["model_digest"]
        rows = [(*k, *v) for k, v in _sum((r for r in kept if r[p] is not None),
                                          lambda r: (r[p], r[m])).items()]
    else:
        src = rollups.window(conn, since)
        rows = _grouped(conn, src, ("prompt_digest", "model_digest"),
                        where=[src.c.prompt_digest.is_not(None)])
    out = [(p, m, int(n), first, last) for p, m, n, first, last, _id in rows]
    return sorted(out, key=lambda r: -r[2])


def alias_groups(conn: Connection, *, since: int | None, missing,
                 missing_row=None) -> list[tuple]:
    """(alias, kind, decisions, first, last) of the window's decisions naming an alias with
    its kind's digest field empty; ``missing(kind_col, columns)`` is that condition in SQL,
    ``missing_row(kind, fields)`` the same in Python (for the in-memory window)."""
    kinds = (sa.select(alias_events.c.alias, sa.func.min(artifacts.c.kind).label("kind"))
             .join(artifacts, artifacts.c.digest == alias_events.c.digest)
             .group_by(alias_events.c.alias).subquery("alias_kind"))
    kept = _kept(conn, since) if missing_row is not None else None
    if kept is not None:
        a = _AT["alias"]
        wanted = {r[a] for r in kept if r[a] is not None}
        kind_of: dict = {}
        names = sorted(wanted)
        for i in range(0, len(names), _BLOCKS):
            kind_of.update(conn.execute(sa.select(kinds.c.alias, kinds.c.kind).where(
                kinds.c.alias.in_(names[i:i + _BLOCKS]))).all())
        hit = [r for r in kept if r[a] is not None and missing_row(
            kind_of.get(r[a]), {k: r[i] for k, i in _AT.items()})]
        return [(al, kd, int(v[0]), v[1], v[2]) for (al, kd), v in
                _sum(hit, lambda r: (r[a], kind_of.get(r[a]))).items()]
    src = rollups.window(conn, since)
    rows = conn.execute(
        sa.select(src.c.alias, kinds.c.kind, sa.func.sum(src.c.n), sa.func.min(src.c.first_at),
                  sa.func.max(src.c.last_at))
        .select_from(src.outerjoin(kinds, kinds.c.alias == src.c.alias))
        .where(src.c.alias.is_not(None), missing(kinds.c.kind, src.c))
        .group_by(src.c.alias, kinds.c.kind)).all()
    return [(a, k, int(n), first, last) for a, k, n, first, last in rows]


def example_blocks(conn: Connection, *, since: int | None, where, want: int,
                   match=None) -> list[int] | None:
    """Blocks holding the first ``want`` decisions (by time) among the window's rows
    ``where(src)`` selects: enough blocks in time order to hold ``want`` of them, and every
    block that starts before the last of those ends. None: no such decision. ``match``
    (the same condition on a row's key fields, a dict): lets a watch process answer from
    its per-block rows in memory."""
    kept = rollup_window.block_rows(conn, since) if match is not None else None
    if kept is not None:
        per: dict[int, list] = {}
        for r in kept:
            if match({k: r[i] for k, i in _B.items()}):
                b = per.get(r[0])
                if b is None:
                    per[r[0]] = [r[_BN], r[_BF], r[_BL]]
                else:
                    b[0], b[1], b[2] = b[0] + r[_BN], min(b[1], r[_BF]), max(b[2], r[_BL])
        rows = [(block, n, first, last) for block, (n, first, last) in per.items()]
    else:
        src = rollups.window(conn, since)
        rows = conn.execute(
            sa.select(src.c.block, sa.func.sum(src.c.n), sa.func.min(src.c.first_at),
                      sa.func.max(src.c.last_at)).where(where(src)).group_by(src.c.block)).all()
    if not rows:
        return None
    rows.sort(key=lambda r: r[2])
    held, until = 0, None
    for _b, n, _first, last in rows:
        held += int(n)
        until = last if until is None else max(until, last)
        if held >= want:
            break
    return [b for b, _n, first, _last in rows if first <= until]


# --- hosted models (MW104) ---------------------------------------------------------------------
def _subject_where(src, subject: str):
    return src.c.model_digest.is_(None) if subject == "embedder_digest" else sa.true()


def _subject_rows(kept, subject: str):
    """The in-memory window's rows of hosted artifacts in ``subject`` reporting an id."""
    s, v, m = _AT[subject], _AT["vendor_model_id"], _AT["model_digest"]
    return [r for r in kept if r[v] is not None and r[s] is not None
            and (subject != "embedder_digest" or r[m] is None)]


def served_ids(conn: Connection, *, since: int | None, subject: str) -> list:
    kept = _kept(conn, since)
    if kept is not None:
        rows = _subject_rows(kept, subject)
        hosted = _vendor_digests(conn, {r[_AT[subject]] for r in rows})
        s, v = _AT[subject], _AT["vendor_model_id"]
        return sorted((Served(dg, vid, *vals) for (dg, vid), vals in _sum(
            (r for r in rows if r[s] in hosted), lambda r: (r[s], r[v])).items()),
            key=lambda r: (r.digest, r.vendor_model_id))
    src = rollups.window(conn, since)
    digest = src.c[subject]
    return conn.execute(
        sa.select(digest.label("digest"), src.c.vendor_model_id, sa.func.sum(src.c.n),
                  sa.func.min(src.c.first_at), sa.func.max(src.c.last_at),
                  sa.func.min(src.c.min_id))
        .select_from(src.join(artifacts, sa.and_(artifacts.c.digest == digest,
                                                 artifacts.c.payload == "vendor")))
        .where(src.c.vendor_model_id.is_not(None), _subject_where(src, subject))
        .group_by(digest, src.c.vendor_model_id).order_by(digest, src.c.vendor_model_id)).all()


def vendor_value_counts(conn: Connection, digests: Iterable[str], *, since: int | None,
                        subject: str) -> dict[tuple[str, str | None], int]:
    kept = _kept(conn, since)
    if kept is not None:
        s, v, m = _AT[subject], _AT["vendor_model_id"], _AT["model_digest"]
        wanted = set(digests)
        return {k: int(vals[0]) for k, vals in _sum(
            (r for r in kept if r[s] in wanted and (subject != "embedder_digest" or r[m] is None)),
            lambda r: (r[s], r[v])).items()}
    src = rollups.window(conn, since)
    digest = src.c[subject]
    return {(dg, v): int(n) for dg, v, n in conn.execute(
        sa.select(digest, src.c.vendor_model_id, sa.func.sum(src.c.n))
        .where(digest.in_(set(digests)), _subject_where(src, subject))
        .group_by(digest, src.c.vendor_model_id)).all()}


def _values(src, field: str):
    """The window's columns that name the values of ``field`` in a row, and the condition
    that the row has any: the vendor model id itself, or the fingerprint range."""
    if field == "vendor_model_id":
        return [src.c.vendor_model_id], src.c.vendor_model_id.is_not(None)
    return [src.c.fp_min, src.c.fp_max], src.c.fp_min.is_not(None)


def _window(conn, since, field: str):
    # the fingerprint range is a column of the gate sums: rows without them are read raw
    return rollups.window(conn, since, gates=field != "vendor_model_id")


def changing_digests(conn: Connection, *, since: int | None, subject: str,
                     field: str = "vendor_model_id") -> list[str]:
    """Hosted artifacts whose decisions in the window report more than one value of
    ``field`` (model id, or fingerprint): the only ones whose value can have changed
    between consecutive decisions."""
    per_block = rollup_window.block_rows(conn, since) if field != "vendor_model_id" else None
    if per_block is not None:  # the fingerprint range, from the watch's per-block rows
        lo_i, hi_i, s, m = _BG["fp_min"], _BG["fp_max"], _B[subject], _B["model_digest"]
        rows = [r for r in per_block if r[lo_i] is not None and r[s] is not None
                and (subject != "embedder_digest" or r[m] is None)]
        hosted = _vendor_digests(conn, {r[s] for r in rows})
        span: dict[str, list] = {}
        for r in rows:
            if r[s] in hosted:
                have = span.setdefault(r[s], [r[lo_i], r[hi_i]])
                have[0], have[1] = min(have[0], r[lo_i]), max(have[1], r[hi_i])
        return [dg for dg, (lo, hi) in span.items() if lo != hi]
    kept = _kept(conn, since) if field == "vendor_model_id" else None
    if kept is not None:  # the watch's state keeps the model id, not the fingerprint range
        rows = _subject_rows(kept, subject)
        hosted = _vendor_digests(conn, {r[_AT[subject]] for r in rows})
        ids: dict[str, set] = {}
        for r in rows:
            if r[_AT[subject]] in hosted:
                ids.setdefault(r[_AT[subject]], set()).add(r[_AT["vendor_model_id"]])
        return [dg for dg, vids in ids.items() if len(vids) > 1]
    src = _window(conn, since, field)
    digest = src.c[subject]
    cols, present = _values(src, field)
    many = (sa.func.count(sa.distinct(cols[0])) > 1 if len(cols) == 1
            else sa.func.min(cols[0]) != sa.func.max(cols[1]))
    return list(conn.execute(
        sa.select(digest)
        .select_from(src.join(artifacts, sa.and_(artifacts.c.digest == digest,
                                                 artifacts.c.payload == "vendor")))
        .where(present, _subject_where(src, subject))
        .group_by(digest).having(many)
    ).scalars())


def change_blocks(conn: Connection, digests: list[str], *, since: int | None,
                  subject: str, field: str = "vendor_model_id"
                  ) -> dict[str, tuple[set[int], set[int]] | None]:
    """Per hosted artifact: (blocks where its reported ``field`` can change, those blocks
    plus the block before each in time), or None when its blocks overlap in time (several
    writers at once), and then all its decisions must be ordered. A change is inside a
    block that reports two values, or between a block and the one before it reporting
    another."""
    kept = rollup_window.block_rows(conn, since)
    if kept is not None:  # the watch's per-block rows in memory
        wanted, s, m = set(digests), _B[subject], _B["model_digest"]
        vals = ([_B["vendor_model_id"]] if field == "vendor_model_id"
                else [_BG["fp_min"], _BG["fp_max"]])
        found = [(r[s], r[0], r[_BF], r[_BL], *[r[i] for i in vals]) for r in kept
                 if r[s] in wanted and r[vals[0]] is not None
                 and (subject != "embedder_digest" or r[m] is None)]
    else:
        src = _window(conn, since, field)
        digest = src.c[subject]
        cols, present = _values(src, field)
        found = conn.execute(
            sa.select(digest, src.c.block, src.c.first_at, src.c.last_at, *cols)
            .where(digest.in_(digests), present, _subject_where(src, subject))).all()
    per: dict[str, dict[int, list]] = {}
    for dg, block, first, last, *values in found:
        b = per.setdefault(dg, {}).setdefault(block, [first, last, set()])
        b[0], b[1] = min(b[0], first), max(b[1], last)
        b[2].update(values)
    out: dict[str, tuple[set[int], set[int]] | None] = {}
    for dg, blocks in per.items():
        order = sorted(blocks.items(), key=lambda kv: kv[1][0])
        suspect: set[int] = set()
        needed: set[int] = set()
        overlap = False
        for i, (number, (first, _last, vids)) in enumerate(order):
            prev = order[i - 1] if i else None
            if prev is not None and prev[1][1] >= first:
                overlap = True
                break
            if len(vids) > 1 or (prev is not None and prev[1][2] != vids):
                suspect.add(number)
                needed.add(number)
                if prev is not None:
                    needed.add(prev[0])
        out[dg] = None if overlap else (suspect, needed)
    return out


# --- stale digests (MW105) ---------------------------------------------------------------------
def _alias_rows(conn, since, aliases: list[str], fields: list[str]):
    """The window's per-block rows of ``aliases`` (block, alias, process, n, first_at,
    last_at, the ``fields``), in batches: from the watch's state when ``conn`` carries one."""
    kept = rollup_window.block_rows(conn, since)
    if kept is not None:
        wanted, a = set(aliases), _B["alias"]
        yield [(r[0], r[a], r[_B["process"]], r[_BN], r[_BF], r[_BL], *[r[_B[f]] for f in fields])
               for r in kept if r[a] in wanted]
        return
    src = rollups.window(conn, since)
    for i in range(0, len(aliases), _BLOCKS):
        # streamed (a server-side cursor on PG): the window's rows of every alias that moved,
        # ~30,000 at 10M decisions, were ~20 MiB held at once
        yield from conn.execute(
            sa.select(src.c.block, src.c.alias, src.c.process, src.c.n, src.c.first_at,
                      src.c.last_at, *[src.c[f] for f in fields])
            .where(src.c.alias.in_(aliases[i:i + _BLOCKS]))
            .execution_options(yield_per=_ROWS)).partitions()


def stale_counts(conn: Connection, ranges, *, since: int | None, count_raw) -> dict[tuple, list]:
    """(alias, digest, process) -> [decisions, first, last] inside the stale ranges: one
    ordered pass over the window's rollup rows of each alias. A rollup row wholly inside a
    range counts whole, one wholly outside not at all; the decisions of the few blocks an
    end of a range cuts through are counted by ``count_raw(ranges, blocks)``."""
    by_key: dict[tuple, list] = {}
    for r in ranges:
        by_key.setdefault((r.alias, r.field, r.digest), []).append(r)
    for spans in by_key.values():
        spans.sort(key=lambda s: s.lo)
    los = {k: [s.lo for s in v] for k, v in by_key.items()}
    aliases = sorted({r.alias for r in ranges})
    fields = sorted({r.field for r in ranges})
    judged = []  # (block, counted key, n, first, last, spans reached or None when inside)
    cut: set[int] = set()
    for rows in _alias_rows(conn, since, aliases, fields):
        for block, alias, process, n, first, last, *digests in rows:
            for field, digest in zip(fields, digests, strict=True):
                key = (alias, field, digest)
                spans = by_key.get(key)
                if spans is None:
                    continue
                j = bisect.bisect_left(los[key], first) - 1  # the span starting before it
                if j >= 0 and (spans[j].hi is None or spans[j].hi > last) and first > spans[j].lo:
                    judged.append((block, (alias, digest, process), int(n), first, last,
                                   [spans[j]]))
                    continue
                nxt = spans[j + 1] if j + 1 < len(spans) else None
                before_end = j < 0 or (spans[j].hi is not None and spans[j].hi <= first)
                if before_end and (nxt is None or nxt.lo >= last):
                    continue  # wholly outside every range
                cut.add(block)
                k = bisect.bisect_left(los[key], last)
                judged.append((block, None, 0, first, last, spans[max(j, 0):k + 1]))
    totals: dict[tuple, list] = {}
    near: dict[int, object] = {}
    for block, key, n, first, last, spans in judged:
        if block in cut:  # read from its decisions, whole: nothing counted twice
            near.update((id(sp), sp) for sp in spans)
            continue
        t = totals.setdefault(key, [0, first, last])
        t[0] += n
        t[1], t[2] = min(t[1], first), max(t[2], last)
    cut_list = sorted(cut)
    reached = list(near.values())
    for i in range(0, len(cut_list), _BLOCKS):
        for key, (n, first, last) in count_raw(reached, cut_list[i:i + _BLOCKS]).items():
            t = totals.setdefault(key, [0, first, last])
            t[0] += n
            t[1], t[2] = min(t[1], first), max(t[2], last)
    return totals



# --- retrieval gates (MW502) -------------------------------------------------------------------
GateRow = namedtuple("GateRow", "gate embedder_digest reranker_digest first_at n passed "
                     "candidates sum_xx sum_xn sum_nn")


def gate_substrates(conn: Connection, *, since: int | None, until: int | None) -> list:
    """``usage.gate_substrates`` from the rows' gate sums: the same integers, summed by
    the database over thousands of rollup rows instead of millions of decisions (or, in a
    watch process, kept summed in memory: ``rollup_window.gates``)."""
    kept = rollup_window.gates(conn, since, until)
    if kept is not None:
        return [GateRow(*key, v[1], v[0], *v[2:]) for key, v in kept[0].items()]
    src = rollups.window(conn, since, until=until, gates=True)
    c = src.c
    gate = sa.func.coalesce(c.alias, "")
    return conn.execute(
        sa.select(gate.label("gate"), c.embedder_digest, c.reranker_digest,
                  sa.func.min(c.gate_first_at).label("first_at"),
                  sa.func.sum(c.gated).label("n"), sa.func.sum(c.gate_passed).label("passed"),
                  sa.func.sum(c.gate_candidates).label("candidates"),
                  sa.func.sum(c.gate_xx).label("sum_xx"), sa.func.sum(c.gate_xn).label("sum_xn"),
                  sa.func.sum(c.gate_nn).label("sum_nn"))
        .where(c.gated > 0)
        .group_by(gate, c.embedder_digest, c.reranker_digest)).all()


def latest_cut_blocks(conn: Connection, *, since: int | None, until: int | None) -> list[int]:
    """The blocks holding each gate's latest decision with a threshold in the window:
    every block with a row whose ``cut_last_at`` is its gate's latest (ties included)."""
    kept = rollup_window.gates(conn, since, until)
    if kept is not None:
        return sorted({b for _at, blocks in kept[1].values() for b in blocks})
    src = rollups.window(conn, since, until=until, gates=True)
    c = src.c
    latest: dict[str, tuple[int, set[int]]] = {}
    for alias, block, at in conn.execute(
            sa.select(c.alias, c.block, c.cut_last_at).where(c.cut_last_at.is_not(None))):
        gate = alias or ""
        best = latest.get(gate)
        if best is None or at > best[0]:
            latest[gate] = (at, {block})
        elif at == best[0]:
            best[1].add(block)
    return sorted({b for _at, blocks in latest.values() for b in blocks})
