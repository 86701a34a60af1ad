"""How production used what: the aggregate reads over the decision log that guards, pages
and commands judge (counts, first and last use, example decision ids).

Every function takes ``since`` (decisions before it are left out, in the query: the cost
follows the window, not the ledger's history) and runs SELECTs only, so ``conn`` may be a
connection or a guard's read-only view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import rollup_usage
from .decision_fields import DIGEST_FIELDS, KIND_FIELD
from .rollups import gated_decision
from .schema import alias_events, artifacts, decisions

_BATCH = 100  # stale ranges per query (5 bind parameters each)


def _since(column, since: int | None) -> sa.ColumnElement[bool]:
    return column >= since if since is not None else sa.true()


def first_id_at(conn: Connection, at: int, **fields) -> str | None:
    """The id (smallest) of a decision at exactly ``at`` whose ``fields`` equal the values
    given (None: the field is empty): names the decision a first or last use was."""
    d = decisions.c
    terms = [d[k].is_(None) if v is None else d[k] == v for k, v in fields.items()]
    return conn.execute(sa.select(d.id).where(d.at == at, *terms)
                        .order_by(d.id).limit(1)).scalar()


# --- prompt and model pairs (MW301, the coverage page) ---------------------------------------
def prompt_model_usage(conn: Connection, *, since: int | None, rollups: bool = False
                       ) -> list[tuple]:
    """(prompt, model, decisions, first, last) per (prompt digest, model digest) pair the
    decisions since ``since`` name (those naming no prompt are left out); most used first.
    ``rollups``: read the per-block rollups (same answer, cost of the window's blocks)."""
    if rollups:
        return rollup_usage.prompt_model_usage(conn, since=since)
    d = decisions.c
    return [tuple(r) for r in conn.execute(
        sa.select(d.prompt_digest, d.model_digest, sa.func.count(), sa.func.min(d.at),
                  sa.func.max(d.at))
        .where(d.prompt_digest.is_not(None), _since(d.at, since))
        .group_by(d.prompt_digest, d.model_digest)
        .order_by(sa.func.count().desc())).all()]


# --- stale digests (MW105) --------------------------------------------------------------------
@dataclass(frozen=True)
class StaleRange:
    """Decisions naming ``alias`` with ``digest`` in ``field`` are stale in (lo, hi)."""

    alias: str
    digest: str
    field: str
    lo: int
    hi: int | None


def stale_counts(conn: Connection, ranges: Iterable[StaleRange], *,
                 since: int | None, rollups: bool = False) -> dict[tuple, list]:
    """(alias, digest, process) -> [decisions, first, last] inside the ranges: one pass
    over the window's decisions of each alias (its index in time order), each decision
    classified in SQL by the range it falls in. ``rollups``: over the alias's rollup rows
    instead, reading decisions only in the blocks a range's end cuts through."""
    ranges = list(ranges)
    if rollups:
        return rollup_usage.stale_counts(
            conn, ranges, since=since,
            count_raw=lambda rs, blocks: _stale_pass(conn, rs, since, blocks))
    return _stale_pass(conn, ranges, since, None)


def _stale_pass(conn: Connection, ranges: list[StaleRange], since: int | None,
                blocks: list[int] | None) -> dict[tuple, list]:
    totals: dict[tuple, list] = {}
    d = decisions.c
    by_alias: dict[tuple[str, str], list[StaleRange]] = {}
    for r in ranges:
        by_alias.setdefault((r.alias, r.field), []).append(r)
    for (alias, field), items in sorted(by_alias.items()):
        col = d[field]
        for i in range(0, len(items), _BATCH):
            batch = items[i:i + _BATCH]
            which = sa.case(*[(sa.and_(col == r.digest, d.at > r.lo,
                                       *([d.at < r.hi] if r.hi is not None else [])), k)
                              for k, r in enumerate(batch)], else_=None).label("range")
            if blocks is None:  # the alias's decisions in time order (ix_decisions_alias_at)
                where = [d.alias == alias]
            else:  # a few blocks: ``alias || ''`` keeps SQLite on the block index
                where = [d.block.in_(blocks), d.alias.concat("") == alias]
            inner = (sa.select(col.label("digest"), d.process, d.at, which)
                     .where(*where, col.in_({r.digest for r in batch}), _since(d.at, since))
                     ).subquery()
            rows = conn.execute(
                sa.select(inner.c.digest, inner.c.process, sa.func.count(),
                          sa.func.min(inner.c.at), sa.func.max(inner.c.at))
                .where(inner.c.range.is_not(None))
                .group_by(inner.c.digest, inner.c.process)).all()
            for digest, process, n, first, last in rows:
                t = totals.setdefault((alias, digest, process), [0, first, last])
                t[0] += n
                t[1], t[2] = min(t[1], first), max(t[2], last)
    return totals


# --- unattributed decisions (MW101) ----------------------------------------------------------
def _alias_kinds():
    """alias -> the artifact kind it points at (the smallest, should it have changed)."""
    return (sa.select(alias_events.c.alias, sa.func.min(artifacts.c.kind).label("kind"))
            .join(artifacts, artifacts.c.digest == alias_events.c.digest)
            .group_by(alias_events.c.alias).subquery("alias_kind"))


def _missing_digest(kind_col, d=decisions.c):
    """Decisions (or rollup rows ``d``) whose alias's digest field is empty, given the
    alias's artifact kind."""
    terms = [sa.and_(kind_col == kind, d[f].is_(None))
             for kind, f in KIND_FIELD.items() if f != "model_digest"]
    terms.append(sa.and_(sa.or_(kind_col.is_(None), kind_col.in_(("model", "adapter"))),
                         d.model_digest.is_(None)))
    # an alias of a dataset, evalset or policy has no field of its own: it needs at least one
    terms.append(sa.and_(kind_col.in_(("dataset", "evalset", "policy")),
                         *[d[f].is_(None) for f in DIGEST_FIELDS]))
    return sa.or_(*terms)


def _missing_row(kind, row: dict) -> bool:
    """:func:`_missing_digest` for one row (field -> value) of an in-memory window."""
    if any(kind == k and row[f] is None for k, f in KIND_FIELD.items() if f != "model_digest"):
        return True
    if (kind is None or kind in ("model", "adapter")) and row["model_digest"] is None:
        return True
    return kind in ("dataset", "evalset", "policy") and all(row[f] is None
                                                            for f in DIGEST_FIELDS)


def _examples(conn, where: Callable, partition, limit: int) -> dict[str, list[str]]:
    """The first ``limit`` decision ids per value of ``partition`` among rows ``where``."""
    if limit <= 0:
        return {}
    rn = sa.func.row_number().over(partition_by=partition,
                                   order_by=(decisions.c.at, decisions.c.id)).label("rn")
    inner = where(sa.select(partition.label("key"), decisions.c.id, rn)).subquery()
    rows = conn.execute(sa.select(inner.c.key, inner.c.id).where(inner.c.rn <= limit)
                        .order_by(inner.c.key, inner.c.rn)).all()
    out: dict[str, list[str]] = {}
    for key, did in rows:
        out.setdefault(key, []).append(did)
    return out


def aliases_without_digest(conn: Connection, *, since: int | None, examples: int,
                           rollups: bool = False) -> tuple[list[tuple], dict[str, list[str]]]:
    """Decisions that name an alias but leave empty the digest field of the alias's
    artifact kind: ([(alias, kind or None, decisions, first, last)], alias -> the first
    ``examples`` decision ids). ``rollups``: counted from the rollups, the examples read
    from the blocks that hold the first of them."""
    kinds = _alias_kinds()
    d = decisions.c
    if rollups:
        groups = rollup_usage.alias_groups(conn, since=since, missing=_missing_digest,
                                           missing_row=_missing_row)
        if not groups:
            return [], {}
        out: dict[str, list[str]] = {}
        for alias, kind, *_ in groups:
            blocks = rollup_usage.example_blocks(
                conn, since=since, want=examples,
                where=lambda src, a=alias, k=kind: sa.and_(
                    src.c.alias == a, _missing_digest(sa.literal(k, sa.String), src.c)),
                match=lambda f, a=alias, k=kind: f["alias"] == a and _missing_row(k, f))
            if blocks and examples > 0:
                found = _examples(conn, lambda q, a=alias, b=blocks, k=kind: q.where(
                    d.alias == a, d.block.in_(b), _since(d.at, since),
                    _missing_digest(sa.literal(k, sa.String))), d.alias, examples)
                out.update(found)
        return groups, out

    def where(q):
        return (q.select_from(decisions.outerjoin(kinds, kinds.c.alias == d.alias))
                .where(d.alias.is_not(None), _since(d.at, since), _missing_digest(kinds.c.kind)))

    groups = [tuple(r) for r in conn.execute(
        where(sa.select(d.alias, kinds.c.kind, sa.func.count(), sa.func.min(d.at),
                        sa.func.max(d.at))).group_by(d.alias, kinds.c.kind)).all()]
    if not groups:
        return [], {}
    return groups, _examples(conn, where, d.alias, examples)


def digest_usage(conn: Connection, *, since: int | None, rollups: bool = False
                 ) -> dict[tuple[str, str], list]:
    """(field, digest) -> [decisions, first, last]: one GROUP BY pass over all digest
    fields at once (their combinations are few: models x prompts x embedders …);
    ``rollups``: over the window's rollup rows."""
    if rollups:
        return rollup_usage.digest_usage(conn, since=since)
    cols = [decisions.c[f] for f in DIGEST_FIELDS]
    rows = conn.execute(sa.select(*cols, sa.func.count(), sa.func.min(decisions.c.at),
                                  sa.func.max(decisions.c.at))
                        .where(_since(decisions.c.at, since)).group_by(*cols))
    return rollup_usage.fold_usage((row[:len(cols)], *row[len(cols):]) for row in rows)


def unregistered_examples(conn: Connection, field: str, *, since: int | None,
                          examples: int, digests: Iterable[str] | None = None
                          ) -> dict[str, list[str]]:
    """Digest named in ``field`` but not registered -> the first ``examples`` decision ids
    naming it. ``digests`` (the unregistered ones, known from the rollups): read only the
    blocks holding the first of their decisions."""
    col = decisions.c[field]
    if digests is not None:
        out: dict[str, list[str]] = {}
        for digest in digests:
            blocks = rollup_usage.example_blocks(conn, since=since, want=examples,
                                                 where=lambda src, g=digest: src.c[field] == g,
                                                 match=lambda f, g=digest: f[field] == g)
            if blocks and examples > 0:
                out.update(_examples(conn, lambda q, g=digest, b=blocks: q.where(
                    col == g, decisions.c.block.in_(b), _since(decisions.c.at, since)),
                    col, examples))
        return out

    def where(q):
        return (q.select_from(decisions.outerjoin(artifacts, artifacts.c.digest == col))
                .where(col.is_not(None), artifacts.c.digest.is_(None),
                       _since(decisions.c.at, since)))

    return _examples(conn, where, col, examples)


# --- hosted models (MW104) ---------------------------------------------------------------------
# A decision's vendor-reported model id is its model's; an embeddings call names no model,
# and then the id is its embedder's.
VENDOR_SUBJECTS = ("model_digest", "embedder_digest")


def _subject(subject: str):
    d = decisions.c
    col = d[subject]
    return col, (d.model_digest.is_(None) if subject == "embedder_digest" else sa.true())


def vendor_changes(conn: Connection, field: str, *, since: int | None,
                   subject: str = "model_digest", rollups: bool = False,
                   _where=None) -> list:
    """Rows (digest, block, id, at, value, vid, prev_id, prev_at, prev_value, prev_vid) where
    ``field`` (``vendor_model_id`` or ``vendor_fingerprint``) changed between consecutive
    decisions of a hosted model (``subject="embedder_digest"``: of a hosted embedder, over
    decisions naming no model). For the fingerprint, only changes under the same reported
    model id count (a new id is a change of the model id). ``rollups``: the rollups name
    the hosted artifacts that reported more than one id (fingerprint) in the window, and
    only the decisions of the blocks where it can change are put in order."""
    d = decisions.c
    column = d[field]
    digest, cond = _subject(subject)
    if rollups:
        changing = rollup_usage.changing_digests(conn, since=since, subject=subject,
                                                 field=field)
        if not changing:
            return []
        out = []
        plans = rollup_usage.change_blocks(conn, changing, since=since, subject=subject,
                                           field=field)
        for dg in changing:
            plan = plans.get(dg)
            if plan is not None and not plan[0]:
                continue
            # a few blocks: ``digest || ''`` keeps SQLite on the block index
            where = (sa.and_(cond, digest == dg) if plan is None else
                     sa.and_(cond, digest.concat("") == dg, d.block.in_(sorted(plan[1]))))
            rows = vendor_changes(conn, field, since=since, subject=subject, _where=where)
            out += [r for r in rows if plan is None or r.block in plan[0]]
        return sorted(out, key=lambda r: (r.digest, r.at, r.id))
    if _where is not None:
        cond = _where
    w = dict(partition_by=digest, order_by=(d.at, d.id))
    inner = (
        sa.select(digest.label("digest"), d.block, d.id, d.at, column.label("value"),
                  sa.func.coalesce(d.vendor_model_id, "").label("vid"),
                  sa.func.lag(d.id).over(**w).label("prev_id"),
                  sa.func.lag(d.at).over(**w).label("prev_at"),
                  sa.func.lag(column).over(**w).label("prev_value"),
                  sa.func.lag(sa.func.coalesce(d.vendor_model_id, "")).over(**w)
                  .label("prev_vid"))
        .select_from(decisions.join(artifacts, sa.and_(artifacts.c.digest == digest,
                                                       artifacts.c.payload == "vendor")))
        .where(column.is_not(None), cond, _since(d.at, since))
    ).subquery()
    changed = [inner.c.prev_value.is_not(None), inner.c.value != inner.c.prev_value]
    if field != "vendor_model_id":
        changed.append(inner.c.vid == inner.c.prev_vid)
    return conn.execute(sa.select(inner).where(*changed)
                        .order_by(inner.c.digest, inner.c.at, inner.c.id)).all()


def vendor_value_counts(conn: Connection, field: str, digests: Iterable[str], *,
                        since: int | None, subject: str = "model_digest",
                        rollups: bool = False) -> dict[tuple[str, str | None], int]:
    """(hosted digest, value of ``field``) -> decisions, for the artifacts ``digests``."""
    if rollups and field == "vendor_model_id":
        return rollup_usage.vendor_value_counts(conn, digests, since=since, subject=subject)
    col = decisions.c[field]
    digest, cond = _subject(subject)
    return {(dg, v): n for dg, v, n in conn.execute(
        sa.select(digest, col, sa.func.count())
        .where(digest.in_(set(digests)), cond, _since(decisions.c.at, since))
        .group_by(digest, col)).all()}


def served_ids(conn: Connection, *, since: int | None, subject: str = "model_digest",
               rollups: bool = False) -> list:
    """Per hosted artifact (``subject``: model, or embedder of decisions naming no model)
    and vendor-reported model id: (digest, vendor_model_id, decisions, first at, last at,
    an example decision id)."""
    if rollups:
        return rollup_usage.served_ids(conn, since=since, subject=subject)
    d = decisions.c
    digest, cond = _subject(subject)
    return conn.execute(
        sa.select(digest.label("digest"), d.vendor_model_id, sa.func.count(),
                  sa.func.min(d.at), sa.func.max(d.at), sa.func.min(d.id))
        .select_from(decisions.join(artifacts, sa.and_(artifacts.c.digest == digest,
                                                       artifacts.c.payload == "vendor")))
        .where(d.vendor_model_id.is_not(None), cond, _since(d.at, since))
        .group_by(digest, d.vendor_model_id).order_by(digest, d.vendor_model_id)).all()


# --- retrieval gates (MW502) -------------------------------------------------------------------
def gate_substrates(conn: Connection, *, since: int | None, until: int,
                    rollups: bool = False) -> list:
    """Per gate (the alias, '' for none) and substrate (embedder, reranker digests): the
    first decision's time, decisions, candidates passed and candidates, and the sums of
    squares and products of each decision's passed and candidates (for the query-level
    variance), over decisions that recorded gate figures in [since, until]. Sums are
    integers (exact; PostgreSQL sums BIGINT into NUMERIC, which cannot overflow).
    ``rollups``: from the per-block rollups' gate sums (the same figures, exactly)."""
    if rollups:
        return rollup_usage.gate_substrates(conn, since=since, until=until)
    d = decisions.c
    gate = sa.func.coalesce(d.alias, "")
    x = sa.cast(d.gate_passed, sa.BigInteger)
    n = sa.cast(d.gate_candidates, sa.BigInteger)
    return conn.execute(
        sa.select(gate.label("gate"), d.embedder_digest, d.reranker_digest,
                  sa.func.min(d.at).label("first_at"), sa.func.count().label("n"),
                  sa.func.sum(x).label("passed"), sa.func.sum(n).label("candidates"),
                  sa.func.sum(x * x).label("sum_xx"), sa.func.sum(x * n).label("sum_xn"),
                  sa.func.sum(n * n).label("sum_nn"))
        .where(gated_decision(d), _since(d.at, since), d.at <= until)
        .group_by(gate, d.embedder_digest, d.reranker_digest)).all()


def latest_gate_cuts(conn: Connection, *, since: int | None, until: int,
                     rollups: bool = False) -> list:
    """Per gate (the alias, '' for none): its latest decision in [since, until] that
    recorded a threshold (id, at, gate_threshold, embedder and reranker digests).
    ``rollups``: ranks only the decisions of the blocks whose rollups hold a gate's last
    threshold (``cut_last_at``)."""
    d = decisions.c
    where = []
    if rollups:
        blocks = rollup_usage.latest_cut_blocks(conn, since=since, until=until)
        if not blocks:
            return []
        where.append(d.block.in_(blocks))
    gate = sa.func.coalesce(d.alias, "")
    ranked = (sa.select(gate.label("gate"), d.id, d.at, d.gate_threshold, d.embedder_digest,
                        d.reranker_digest,
                        sa.func.row_number().over(partition_by=gate,
                                                  order_by=(d.at.desc(), d.id.desc()))
                        .label("rn"))
              .where(d.gate_threshold.is_not(None), _since(d.at, since), d.at <= until,
                     *where)
              ).subquery()
    return conn.execute(sa.select(ranked).where(ranked.c.rn == 1)).all()
