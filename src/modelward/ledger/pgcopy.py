"""PostgreSQL: writing a block of decisions (the recorder's and the batch ingest's path).

The decisions table is partitioned by month (:mod:`.partitions`), so its key is
``(id, at)``; a client-made id stays unique across partitions through ``decision_ids``
(id primary key). A block goes in in two steps, in the caller's write transaction:

1. ``INSERT INTO decision_ids SELECT unnest(ids) ON CONFLICT DO NOTHING RETURNING id``:
   one round trip claims the ids not yet recorded (a re-sent id claims nothing, so a
   retry never duplicates; the caller then compares its content to tell a duplicate from
   a conflict);
2. the rows whose ids were claimed go straight into ``decisions``: by binary ``COPY`` when
   there are :data:`COPY_MIN` or more, else one pipelined ``executemany``.

No staging table, no savepoint: writers take turns under the chain's advisory lock, so no
other transaction can claim an id between the two steps. (The previous path COPYed every
block into a temporary table and ran ``INSERT … SELECT … ON CONFLICT``: the server wrote
each row twice and truncated the staging table per block; bench/record_postgres.py
measured it at 0.41× raw COPY, this path against the same raw COPY in the same run.)
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ..timefmt import now_us
from . import chain, partitions

COPY_MIN = 64  # fewer rows: one pipelined executemany is cheaper than COPY's round trips
TYPES = {"id": "varchar", "at": "int8", "gate_threshold": "float8",
         "gate_candidates": "int4", "gate_passed": "int4", "recorded_at": "int8",
         "block": "int8", "pos": "int4", "segments": "text", "extra": "text"}
# The ids go as one comma-joined text (ids are validated UUIDs: no commas), not an array
# parameter, which psycopg dumps element by element (~10 µs a row in Python).
_CLAIM = ("INSERT INTO decision_ids (id) SELECT unnest(string_to_array(%s, ',')) "
          "ON CONFLICT (id) DO NOTHING RETURNING id")
_CLAIM_ARRAY = ("INSERT INTO decision_ids (id) SELECT unnest(%s::varchar[]) "
                "ON CONFLICT (id) DO NOTHING RETURNING id")


def _partitioned(conn: Connection) -> bool:
    return conn.exec_driver_sql("SELECT to_regclass('decision_ids')").scalar() is not None


def _legacy_sql(columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO decisions ({', '.join(columns)}) VALUES "
            f"({', '.join(['%s'] * len(columns))}) ON CONFLICT (id) DO NOTHING")


def insert_rows(conn: Connection, store, columns: tuple[str, ...], rows: list[tuple],
                hashed: list | None = None) -> int:
    """Insert full decision rows (``columns`` order, id first, ``at`` second, the chained
    columns first) whose ids are not recorded yet; returns how many went in. ``hashed``,
    when given, receives the chain leaf of each row written, in order: hashed between the
    rows COPY sends, while the server is busy with the ones before."""
    import psycopg

    settings = store.settings
    known = store.__dict__.setdefault("_pg_partitions", set())
    cur = conn.connection.driver_connection.cursor()
    sql = "partitions"
    try:
        if not known and not _partitioned(conn):  # a ledger before 0015_partitions
            sql = _legacy_sql(columns)
            cur.executemany(sql, rows)
            return cur.rowcount
        ats = [r[1] for r in rows]
        partitions.ensure(conn, known, min(ats), max(ats), now=now_us(),
                          retention=settings.retention)
        sql = _CLAIM
        joined = ",".join([r[0] for r in rows])
        if joined.count(",") == len(rows) - 1:
            cur.execute(_CLAIM, (joined,))
        else:  # an id with a comma in it (never one normalize() passed): as an array
            cur.execute(_CLAIM_ARRAY, ([r[0] for r in rows],))
        claimed = {r[0] for r in cur.fetchall()}
        if len(claimed) != len(rows):
            rows = [r for r in rows if r[0] in claimed]
        if not rows:
            return 0
        cols = ", ".join(columns)
        if len(rows) < COPY_MIN:
            sql = f"INSERT INTO decisions ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"
            cur.executemany(sql, rows)
            if hashed is not None:
                hashed.extend(chain.leaves(rows))
            return len(rows)
        sql = f"COPY decisions ({cols}) FROM STDIN (FORMAT BINARY)"
        with cur.copy(sql) as copy:
            copy.set_types([TYPES.get(c, "varchar") for c in columns])
            write = copy.write_row
            if hashed is None:
                for row in rows:
                    write(row)
            else:  # chain.leaves, inlined into the loop that feeds COPY
                prefix, dumps, n, keep = chain._LEAF_PREFIX.copy, chain._dumps, \
                    chain.N_CHAINED, hashed.append
                for row in rows:
                    write(row)
                    h = prefix()
                    h.update(dumps(row[:n]))
                    keep(h.digest())
        return len(rows)
    except psycopg.Error as exc:  # the driver's error in SQLAlchemy's shape: the ledger's
        raise sa_exc.DBAPIError.instance(  # one translation (engine.translate) applies
            sql, None, exc, psycopg.Error) from exc
    finally:
        cur.close()
