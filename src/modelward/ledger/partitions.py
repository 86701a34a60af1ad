"""PostgreSQL: the decisions table partitioned by month of ``at``.

``decisions`` is declared ``PARTITION BY RANGE (at)`` (migration ``0015_partitions``), one
partition per calendar month (UTC) named ``decisions_pYYYYMM``, plus ``decisions_pdefault``
for anything outside them. The ledger creates the partitions it needs before it writes: the
months of the block being written and :data:`AHEAD` months past the current one, so a
decision never waits on DDL at the turn of a month and never fails for want of a partition
(a month outside ``[now - max(retention, 10 years), now + ahead]`` lands in the default
partition instead of creating tables on a client's say-so). Retention drops whole
partitions (:mod:`modelward.ledger.retirement`). SQLite keeps one table.

A primary key of a partitioned table must include the partition key, so ``decisions`` is
keyed by ``(id, at)`` here, and a decision id is kept unique across partitions by
``decision_ids`` (one narrow row per id; :mod:`modelward.ledger.pgcopy`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

DEFAULT = "decisions_pdefault"
AHEAD = 3  # months created past the current one
BACK = 10 * 366 * 86_400_000_000  # older (and past retention): the default partition
_UTC = dt.UTC


def month_of(at_us: int) -> tuple[int, int]:
    d = dt.datetime.fromtimestamp(at_us / 1e6, _UTC)
    return d.year, d.month


def _us(year: int, month: int) -> int:
    return int(dt.datetime(year, month, 1, tzinfo=_UTC).timestamp()) * 1_000_000


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def bounds(year: int, month: int) -> tuple[int, int]:
    """[first microsecond of the month, first of the next)."""
    return _us(year, month), _us(*_next(year, month))


def name(year: int, month: int) -> str:
    return f"decisions_p{year:04d}{month:02d}"


def months(first: tuple[int, int], last: tuple[int, int]):
    ym = first
    while ym <= last:
        yield ym
        ym = _next(*ym)


def is_partition(table_name: str | None) -> bool:
    """Whether a table is one of decisions' partitions (schema comparisons skip them:
    ledger/schema.py declares the partitioned table, not its months)."""
    return bool(table_name) and table_name.startswith("decisions_p")


def has_partitions(conn: Connection) -> bool:
    """Whether ``decisions`` is partitioned (a PostgreSQL ledger at 0015_partitions or later)."""
    return conn.exec_driver_sql(
        f"SELECT to_regclass('{DEFAULT}')").scalar() is not None


def existing(conn: Connection) -> dict[str, tuple[int, int]]:
    """The monthly partitions of ``decisions``: name -> (year, month), oldest first."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'decisions'::regclass").scalars().all()
    out = {}
    for n in sorted(rows):
        if n.startswith("decisions_p") and n[11:].isdigit() and len(n) == 17:
            out[n] = (int(n[11:15]), int(n[15:17]))
    return out


def create(conn: Connection, year: int, month: int) -> bool:
    """Create one month's partition unless it exists; False (and nothing done) when the
    default partition already holds rows of that month (they stay there)."""
    lo, hi = bounds(year, month)
    stray = conn.exec_driver_sql(
        f"SELECT 1 FROM {DEFAULT} WHERE at >= {lo} AND at < {hi} LIMIT 1").first()
    if stray is not None:
        return False
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name(year, month)} PARTITION OF "
                         f"decisions FOR VALUES FROM ({lo}) TO ({hi})")
    return True


def ensure(conn: Connection, known: set[str], first_at: int, last_at: int, *, now: int,
           retention: int) -> None:
    """Create the partitions a block spanning ``first_at..last_at`` needs and those up to
    :data:`AHEAD` months past ``now``, in the caller's write transaction. ``known`` (the
    store's cache of names found in the catalogue) saves the look-up on every block."""
    floor = month_of(now - max(retention, BACK))
    ceiling = month_of(now)
    for _ in range(AHEAD):
        ceiling = _next(*ceiling)
    lo = max(month_of(first_at), floor)
    hi = max(min(month_of(last_at), ceiling), ceiling)
    wanted = [ym for ym in months(min(lo, month_of(now)), hi) if name(*ym) not in known]
    if not wanted:
        return
    known.update(existing(conn))
    for ym in wanted:
        if name(*ym) not in known:
            # not cached as made: this transaction may yet roll back; the next block finds
            # it in the catalogue once committed
            create(conn, *ym)
