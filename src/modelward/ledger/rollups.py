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

Retrieval gates (migration 0018_rollup_gates): each row also holds the sums MW502's
query-level test needs over its decisions that recorded gate figures (``gate_candidates``
> 0 and ``gate_passed`` set): how many (``gated``), the first one's ``at``, Σpassed,
Σcandidates, Σpassed², Σpassed·candidates, Σcandidates² (integers: summed exactly, so
verify compares them exactly and the guard's statistics are those of the decisions), and
the ``at`` of the last decision that recorded a threshold (``cut_last_at``: which blocks
hold a gate's latest cut), and the smallest and largest vendor fingerprint (``fp_min``,
``fp_max``: equal when the row's decisions report one fingerprint, so MW104 puts in order
only the decisions of the blocks where a fingerprint can change). A row whose ``gated``
is NULL (written by a modelward that predates these columns) has none of them: those
reads take its block from its decisions.

Windows: :func:`window` is the rows of every decision at or after ``since`` (and, given
``until``, at or before it): the rollups of the blocks wholly inside it, plus the decisions
themselves, aggregated the same way, of the blocks the window's ends cut through and of any
decision block without rollups.
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
# MW502's sums over a row's gated decisions (migration 0018_rollup_gates)
# and the smallest and largest vendor fingerprint (MW104 with ``fingerprint = true``)
GATE_VALUES = ("gated", "gate_first_at", "gate_passed", "gate_candidates", "gate_xx",
               "gate_xn", "gate_nn", "cut_last_at", "fp_min", "fp_max")


# The largest candidates figure a decision may bring into MW502's sums: its square times
# ~9 million decisions of one block still fits in 64 bits (a decision may record up to
# 2^31 - 1, whose squares would overflow; such decisions are left out of the test).
GATE_LIMIT = 1_000_000


def gated_decision(d):
    """Whether a decision counts in MW502's query-level test: it recorded candidates (1 to
    :data:`GATE_LIMIT`) and how many passed (0 to :data:`GATE_LIMIT`). The one rule of the
    raw and the rollup paths."""
    return sa.and_(d.gate_candidates > 0, d.gate_candidates <= GATE_LIMIT,
                   d.gate_passed.is_not(None), d.gate_passed >= 0,
                   d.gate_passed <= GATE_LIMIT)


def gate_sums() -> list:
    """The aggregate expressions of :data:`GATE_VALUES` over decisions (in integers: exact
    on both databases, PostgreSQL sums BIGINT into NUMERIC)."""
    d = decisions.c
    gated = gated_decision(d)
    x = sa.cast(d.gate_passed, sa.BigInteger)
    n = sa.cast(d.gate_candidates, sa.BigInteger)

    def total(value):
        return sa.func.sum(sa.case((gated, value), else_=0))

    return [total(1).label("gated"),
            sa.func.min(sa.case((gated, d.at), else_=None)).label("gate_first_at"),
            total(x).label("gate_passed"), total(n).label("gate_candidates"),
            total(x * x).label("gate_xx"), total(x * n).label("gate_xn"),
            total(n * n).label("gate_nn"),
            sa.func.max(sa.case((d.gate_threshold.is_not(None), d.at), else_=None))
            .label("cut_last_at"),
            sa.func.min(d.vendor_fingerprint).label("fp_min"),
            sa.func.max(d.vendor_fingerprint).label("fp_max")]


def _aggregate(blocks_where, *, numbered: bool = True, gates: bool = True) -> sa.Select:
    """The rollup rows of the decisions ``blocks_where`` selects, in table column order
    (``numbered=False``: without ``pos``, which verify does not compare; ``gates=False``:
    without the gate sums, for a schema before 0018_rollup_gates)."""
    d = decisions.c
    key = [d[k] for k in KEY]
    pos = [(sa.func.row_number().over(partition_by=d.block, order_by=key) - 1).label("pos")]
    return (sa.select(d.block, *(pos if numbered else []), *key,
                      sa.func.count().label("count"),
                      sa.func.min(d.at).label("first_at"), sa.func.max(d.at).label("last_at"),
                      sa.func.min(d.id).label("min_id"), *(gate_sums() if gates else []))
            .where(blocks_where).group_by(d.block, *key))


def _columns(gates: bool) -> list[str]:
    return ["block", "pos", *KEY, *_VALUES, *(GATE_VALUES if gates else ())]


_HAVE_TABLE: weakref.WeakSet = weakref.WeakSet()  # engines whose schema has the table
_HAVE_GATES: weakref.WeakSet = weakref.WeakSet()  # … and its gate sums (0018_rollup_gates)


def _has_table(conn: Connection) -> bool:
    """Whether the schema has rollups yet: a ledger behind migration 0014 still records, and
    the migration back-fills the blocks written meanwhile (only a yes is remembered)."""
    if conn.engine in _HAVE_TABLE:
        return True
    if sa.inspect(conn).has_table("decision_rollups"):
        _HAVE_TABLE.add(conn.engine)
        return True
    return False


def has_gates(conn: Connection, *, cached: bool = True) -> bool:
    """Whether the rollups hold the gate sums yet (migration 0018 back-fills the blocks
    written before it; only a yes is remembered, and migrations ask afresh)."""
    if cached and conn.engine in _HAVE_GATES:
        return True
    if not sa.inspect(conn).has_table("decision_rollups"):
        return False
    names = {c["name"] for c in sa.inspect(conn).get_columns("decision_rollups")}
    if "fp_max" in names:
        _HAVE_GATES.add(conn.engine)
        return True
    return False


def _insert(conn: Connection, blocks_where, *, cached: bool = True) -> None:
    gates = has_gates(conn, cached=cached)
    conn.execute(decision_rollups.insert().from_select(
        _columns(gates), _aggregate(blocks_where, gates=gates)))


def write_block(conn: Connection, number: int) -> None:
    """Store the rollups of decision block ``number`` (its decisions already inserted)."""
    if not _has_table(conn):
        return
    _insert(conn, decisions.c.block == number)


def block_sql(dialect, *, gates: bool = True) -> tuple[str, dict]:
    """:func:`write_block`'s statement as driver SQL and its parameters (set ``block``),
    for a pipeline that sends it without SQLAlchemy's execution (psycopg: ``%(name)s``);
    ``gates``: with the gate sums (:func:`has_gates`)."""
    stmt = decision_rollups.insert().from_select(
        _columns(gates),
        _aggregate(decisions.c.block == sa.bindparam("block", type_=sa.BigInteger),
                   gates=gates))
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
        _insert(conn, decisions.c.block.in_(part))


def backfill(conn: Connection) -> None:
    """Rollups for every decision block (the migrations that add the table and the gate
    sums)."""
    conn.execute(decision_rollups.delete())
    _insert(conn, sa.true(), cached=False)  # a downgrade may have dropped the gate sums


def verify(conn: Connection, first_block: int | None, broken: set[int]) -> list[tuple]:
    """Recompute the rollups of the blocks from ``first_block`` on (None: none) and compare
    them with the stored ones: [(block, [{"kind", "id", "problem"}])] for each block whose
    rollups differ, leaving out ``broken`` blocks (their decisions already fail).

    The database compares first (:func:`_differing_blocks`): only the blocks where a
    recomputed row and a stored row do not pair up one to one cross to the client, and are
    compared row by row here (:func:`_compare`), :data:`_COMPARED` blocks at a time. An
    intact ledger sends none, so the client's memory no longer follows the rollup count
    (~33,000 rows at 10M decisions, ~50 MiB when compared here)."""
    if first_block is None:
        return []
    gates = has_gates(conn)
    differing = _differing_blocks(conn, first_block, gates)
    out: list[tuple] = []
    for i in range(0, len(differing), _COMPARED):
        out += _compare(conn, differing[i:i + _COMPARED], broken, gates)
    return sorted(out)


_COMPARED = 500  # blocks compared row by row at once (a handful of rollup rows each)


class Apart:
    """:func:`verify` on a connection of its own (of ``engine``), in a thread started at
    once, for a verification whose own connection recomputes the chain meanwhile
    (``chain.verify(apart=True)``): the database computes the comparison with the GIL
    released, so the two overlap on a second core. The first block compared is the first
    block with decisions after ``floor`` (the rows the chain's reader sees first, by the
    same ``WHERE``); the blocks ``broken`` in their decisions are left out at
    :meth:`result`, which only drops findings, as :func:`verify` does with them."""

    def __init__(self, engine, floor: int) -> None:
        import threading

        self._engine, self._floor = engine, floor
        self._found: list[tuple] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="modelward-verify-rollups",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._engine.connect() as other:
                first = sa.select(sa.func.min(decisions.c.block))
                if self._floor:
                    first = first.where(decisions.c.block > self._floor)
                number = other.execute(first).scalar()
                self._found = verify(other, number if number is not None else self._floor + 1,
                                     set())
        except BaseException as exc:  # raised in the caller's thread by result()
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def result(self, broken: set[int]) -> list[tuple]:
        """:func:`verify`'s findings, less the ``broken`` blocks; the thread's error, if any,
        raised here (the verification fails, it never passes unchecked)."""
        self.join()
        if self._error is not None:
            raise self._error
        return [(number, found) for number, found in self._found if number not in broken]


def _verified_columns(gates: bool) -> list[str]:
    return ["block", *KEY, *_VALUES, *(GATE_VALUES if gates else ())]


def _differing_blocks(conn: Connection, first_block: int, gates: bool) -> list[int]:
    """The blocks from ``first_block`` on that hold stored rollups and where the recomputed
    rows and the stored ones (every compared column) do not pair up one to one: a row on
    one side only, or twice on one side. GROUP BY takes NULLs as equal, as the row-by-row
    comparison does; a stored row without the gate sums (an older writer) never pairs, so
    its block is compared row by row, where only its counts are. A block with no stored
    rollups is read raw by the guards and never a problem: left out."""
    r = decision_rollups.c
    cols = _verified_columns(gates)
    want = _aggregate(decisions.c.block >= first_block, numbered=False, gates=gates) \
        .add_columns(sa.literal(1).label("w"), sa.literal(0).label("h"))
    have = sa.select(*[r[c] for c in cols], sa.literal(0).label("w"),
                     sa.literal(1).label("h")).where(r.block >= first_block)
    both = sa.union_all(want, have).subquery()
    unpaired = (sa.select(both.c.block).group_by(*both.c[:len(cols)])
                .having(sa.or_(sa.func.sum(both.c.w) != 1, sa.func.sum(both.c.h) != 1)))
    rolled = sa.select(r.block).where(r.block >= first_block)
    sub = unpaired.subquery()
    return list(conn.execute(sa.select(sub.c.block).distinct()
                             .where(sub.c.block.in_(rolled)).order_by(sub.c.block)).scalars())


def _compare(conn: Connection, blocks: list[int], broken: set[int], gates: bool) -> list[tuple]:
    """:func:`verify`'s row-by-row comparison of ``blocks``' recomputed and stored rollups."""
    r = decision_rollups.c
    cols = _verified_columns(gates)
    # aggregated by the database: only the rollup-sized result crosses to the client
    # (integers throughout: PostgreSQL's NUMERIC sums compare equal to the stored BIGINTs)
    want = {(row[0], *row[1:1 + len(KEY)]): tuple(row[1 + len(KEY):])
            for row in conn.execute(_aggregate(decisions.c.block.in_(blocks),
                                               numbered=False, gates=gates))}
    have: dict[tuple, tuple] = {}
    pos_of: dict[tuple, int] = {}
    dupes: list[tuple] = []
    base = len(_VALUES)
    for row in conn.execute(sa.select(r.pos, *[r[c] for c in cols])
                            .where(r.block.in_(blocks))):
        key = (row[1], *row[2:2 + len(KEY)])
        if key in have:
            dupes.append((key, row[0]))
        values = tuple(row[2 + len(KEY):])
        if gates and values[base] is None:
            # written without gate sums (an older writer): the gate reads take this block
            # from its decisions, so only the counts are vouched for
            values = values[:base] + want.get(key, values)[base:]
        have[key] = values
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
    return list(problems.items())


# --- the window the guards read ---------------------------------------------------------------
def raw_blocks(conn: Connection, since: int | None, until: int | None = None, *,
               gates: bool = False) -> list[int]:
    """Decision blocks read from the decisions themselves for a window from ``since`` (to
    ``until``): those its ends cut through, and any decision block that has no rollups
    (``gates``: or rollups without the gate sums)."""
    r, b = decision_rollups.c, chain_blocks.c
    unrolled = sa.select(b.number).where(
        b.records == 0, b.count > 0,
        ~sa.exists().where(r.block == b.number).correlate(chain_blocks))
    if since is not None:
        unrolled = unrolled.where(b.last_at >= since)
    if until is not None:
        unrolled = unrolled.where(b.first_at <= until)
    out = set(conn.execute(unrolled).scalars())
    cut = []
    if since is not None:
        cut.append(sa.and_(r.first_at < since, r.last_at >= since))
    if until is not None:
        cut.append(sa.and_(r.first_at <= until, r.last_at > until))
    if gates:
        cut.append(r.gated.is_(None))
    if cut:
        out |= set(conn.execute(sa.select(r.block).where(sa.or_(*cut)).distinct()).scalars())
    return sorted(out)


def window(conn: Connection, since: int | None, *, key: tuple[str, ...] = KEY,
           until: int | None = None, gates: bool = False) -> sa.Subquery:
    """Rollup rows (block, ``key`` columns, n, first_at, last_at, min_id and, with
    ``gates``, the :data:`GATE_VALUES`) covering exactly the decisions at or after
    ``since`` (and at or before ``until``); aggregate them further with GROUP BY."""
    r, d = decision_rollups.c, decisions.c
    # one answer per snapshot: a guard view (one read transaction) keeps it for every guard
    cache = getattr(conn, "__dict__", {}).setdefault("_rollup_raw_blocks", {})
    raw = cache.get((since, until, gates))
    if raw is None:
        raw = cache[(since, until, gates)] = raw_blocks(conn, since, until, gates=gates)
    extra = [r[c] for c in GATE_VALUES] if gates else []
    rolled = sa.select(r.block, *[r[k] for k in key], r.count.label("n"), r.first_at,
                       r.last_at, r.min_id, *extra)
    if since is not None:
        rolled = rolled.where(r.first_at >= since)
    if until is not None:
        rolled = rolled.where(r.last_at <= until)
    if not raw:
        return rolled.subquery("rolled")
    rolled = rolled.where(r.block.not_in(raw))
    direct = (sa.select(d.block, *[d[k] for k in key], sa.func.count().label("n"),
                        sa.func.min(d.at).label("first_at"), sa.func.max(d.at).label("last_at"),
                        sa.func.min(d.id).label("min_id"), *(gate_sums() if gates else []))
              .where(d.block.in_(raw), d.at >= since if since is not None else sa.true(),
                     d.at <= until if until is not None else sa.true())
              .group_by(d.block, *[d[k] for k in key]))
    return sa.union_all(rolled, direct).subquery("rolled")
