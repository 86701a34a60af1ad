"""Per-block rollups of the decision log: what the counting guards read instead of decisions.

When a decision block is sealed, :func:`write_block` stores in the same transaction one
``decision_rollups`` row per distinct (alias, model, prompt, embedder, reranker and config
digests, process, vendor model id) among its decisions, with their count, first and last
``at`` and smallest id. A block of 2,000 decisions from one serving process holds a handful
of such groups, so MW101, MW102, MW104, MW105 and MW301 read thousands of rows where they
read millions (``modelward.ledger.rollup_usage``).

Integrity: a rollup is a function of its block's decisions, and the decisions are chained.
Rollups are therefore not leaves of their own (decision block roots stay byte-identical,
for existing ledgers too): :func:`verify` recomputes them from the decisions of the blocks
``chain.verify`` checks, in SQL, and names each block whose stored rollups differ (edited,
deleted or inserted rows). A block with no rollups at all is not an error: the guards read
its decisions instead (:func:`raw_blocks`), so removing rollups can slow a check, never
change its findings. Whatever deletes decisions (retention, archiving) calls
:func:`refresh` for the blocks it touched in the same transaction.

Windows: :func:`window` is the rows of every decision at or after ``since``: the rollups of
the blocks wholly inside it, plus the decisions themselves, aggregated the same way, of the
blocks the window's start cuts through and of any decision block without rollups.
"""

from __future__ import annotations

import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import chain_blocks, decision_rollups, decisions

# The grouping key of a rollup row, in table order.
KEY = ("alias", "model_digest", "prompt_digest", "embedder_digest", "reranker_digest",
       "config_digest", "process", "vendor_model_id")
_VALUES = ("count", "first_at", "last_at", "min_id")


def _aggregate(blocks_where, *, numbered: bool = True) -> sa.Select:
    """The rollup rows of the decisions ``blocks_where`` selects, in table column order
    (``numbered=False``: without ``pos``, which verify does not compare)."""
    d = decisions.c
    key = [d[k] for k in KEY]
    pos = [(sa.func.row_number().over(partition_by=d.block, order_by=key) - 1).label("pos")]
    return (sa.select(d.block, *(pos if numbered else []), *key,
                      sa.func.count().label("count"),
                      sa.func.min(d.at).label("first_at"), sa.func.max(d.at).label("last_at"),
                      sa.func.min(d.id).label("min_id"))
            .where(blocks_where).group_by(d.block, *key))


_COLUMNS = ["block", "pos", *KEY, *_VALUES]


_HAVE_TABLE: weakref.WeakSet = weakref.WeakSet()  # engines whose schema has the table


def _has_table(conn: Connection) -> bool:
    """Whether the schema has rollups yet: a ledger behind migration 0014 still records, and
    the migration back-fills the blocks written meanwhile (only a yes is remembered)."""
    if conn.engine in _HAVE_TABLE:
        return True
    if sa.inspect(conn).has_table("decision_rollups"):
        _HAVE_TABLE.add(conn.engine)
        return True
    return False


def write_block(conn: Connection, number: int) -> None:
    """Store the rollups of decision block ``number`` (its decisions already inserted)."""
    if not _has_table(conn):
        return
    conn.execute(decision_rollups.insert().from_select(
        _COLUMNS, _aggregate(decisions.c.block == number)))


def block_sql(dialect) -> tuple[str, dict]:
    """:func:`write_block`'s statement as driver SQL and its parameters (set ``block``),
    for a pipeline that sends it without SQLAlchemy's execution (psycopg: ``%(name)s``)."""
    stmt = decision_rollups.insert().from_select(
        _COLUMNS, _aggregate(decisions.c.block == sa.bindparam("block", type_=sa.BigInteger)))
    compiled = stmt.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)


def has_table(conn: Connection) -> bool:
    return _has_table(conn)


def refresh(conn: Connection, blocks) -> None:
    """Recompute the rollups of ``blocks`` from their decisions as they are now (after a
    retention or archive delete); a block left without decisions keeps no rollups."""
    blocks = sorted(set(blocks))
    for i in range(0, len(blocks), 500):
        part = blocks[i:i + 500]
        conn.execute(decision_rollups.delete().where(decision_rollups.c.block.in_(part)))
        conn.execute(decision_rollups.insert().from_select(
            _COLUMNS, _aggregate(decisions.c.block.in_(part))))


def backfill(conn: Connection) -> None:
    """Rollups for every decision block (the migration that adds the table)."""
    conn.execute(decision_rollups.delete())
    conn.execute(decision_rollups.insert().from_select(_COLUMNS, _aggregate(sa.true())))


def verify(conn: Connection, first_block: int | None, broken: set[int]) -> list[tuple]:
    """Recompute the rollups of the blocks from ``first_block`` on (None: none) and compare
    them with the stored ones: [(block, [{"kind", "id", "problem"}])] for each block whose
    rollups differ, leaving out ``broken`` blocks (their decisions already fail)."""
    if first_block is None:
        return []
    r = decision_rollups.c
    cols = ["block", *KEY, *_VALUES]
    # aggregated by the database: only the rollup-sized result crosses to the client
    want = {(row[0], *row[1:1 + len(KEY)]): tuple(row[1 + len(KEY):])
            for row in conn.execute(_aggregate(decisions.c.block >= first_block,
                                               numbered=False))}
    have: dict[tuple, tuple] = {}
    pos_of: dict[tuple, int] = {}
    dupes: list[tuple] = []
    for row in conn.execute(sa.select(r.pos, *[r[c] for c in cols])
                            .where(r.block >= first_block)):
        key = (row[1], *row[2:2 + len(KEY)])
        if key in have:
            dupes.append((key, row[0]))
        have[key] = tuple(row[2 + len(KEY):])
        pos_of[key] = row[0]
    problems: dict[int, list[dict]] = {}

    def note(key, pos, problem):
        if key[0] not in broken:
            problems.setdefault(key[0], []).append(
                {"kind": "decision_rollups", "id": f"{key[0]}/{pos}", "problem": problem})

    for key, values in have.items():
        if key not in want:
            note(key, pos_of[key], "inserted")
        elif want[key] != values:
            note(key, pos_of[key], "edited")
    for key, pos in dupes:
        note(key, pos, "inserted")
    rolled = {key[0] for key in have}  # a block without any rollup is read raw: no harm
    for key in want.keys() - have.keys():
        if key[0] in rolled:
            note(key, "-", "deleted")
    return sorted(problems.items())


# --- the window the guards read ---------------------------------------------------------------
def raw_blocks(conn: Connection, since: int | None) -> list[int]:
    """Decision blocks read from the decisions themselves for a window from ``since``: those
    its start cuts through, and any decision block that has no rollups."""
    r, b = decision_rollups.c, chain_blocks.c
    unrolled = sa.select(b.number).where(
        b.records == 0, b.count > 0,
        ~sa.exists().where(r.block == b.number).correlate(chain_blocks))
    if since is None:
        return list(conn.execute(unrolled).scalars())
    straddling = sa.select(r.block).where(r.first_at < since, r.last_at >= since).distinct()
    return sorted(set(conn.execute(unrolled.where(b.last_at >= since)).scalars())
                  | set(conn.execute(straddling).scalars()))


def window(conn: Connection, since: int | None, *, key: tuple[str, ...] = KEY) -> sa.Subquery:
    """Rollup rows (block, ``key`` columns, n, first_at, last_at, min_id) covering exactly the
    decisions at or after ``since``; aggregate them further with GROUP BY."""
    r, d = decision_rollups.c, decisions.c
    # one answer per snapshot: a guard view (one read transaction) keeps it for every guard
    cache = getattr(conn, "__dict__", {}).setdefault("_rollup_raw_blocks", {})
    raw = cache.get(since)
    if raw is None:
        raw = cache[since] = raw_blocks(conn, since)
    rolled = sa.select(r.block, *[r[k] for k in key], r.count.label("n"), r.first_at,
                       r.last_at, r.min_id)
    if since is not None:
        rolled = rolled.where(r.first_at >= since)
    if not raw:
        return rolled.subquery("rolled")
    rolled = rolled.where(r.block.not_in(raw))
    direct = (sa.select(d.block, *[d[k] for k in key], sa.func.count().label("n"),
                        sa.func.min(d.at).label("first_at"), sa.func.max(d.at).label("last_at"),
                        sa.func.min(d.id).label("min_id"))
              .where(d.block.in_(raw), d.at >= since if since is not None else sa.true())
              .group_by(d.block, *[d[k] for k in key]))
    return sa.union_all(rolled, direct).subquery("rolled")
