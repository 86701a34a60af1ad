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

No staging table, no savepoint: a claimed id is this transaction's until it commits (a
writer claiming it meanwhile waits, then finds it recorded), so nothing can take it between
the two steps. (The previous path COPYed every block into a temporary table and ran
``INSERT … SELECT … ON CONFLICT``: the server wrote each row twice and truncated the staging
table per block; bench/record_postgres.py measured it at 0.41× raw COPY.)

:func:`insert_rows` does both steps in a transaction that holds the chain's lock from the
start (batch imports, ledgers before ``0015_partitions``). ``decisions.append`` takes the
lock late instead: see "the recorder's blocks" below.
"""

from __future__ import annotations

import contextlib
import functools

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


# ---- the recorder's blocks: the work before the chain's lock, then a short critical section ----
#
# ``decisions.append`` on a partitioned ledger (its own transaction, ``Store.write(late_lock=
# True)``) writes a block in four round trips, of which only the last three hold the lock:
#
# 1. before the lock, one pipeline: the ids claimed (sorted, so two writers re-sending the
#    same ids claim them in one order and never deadlock; a claim another writer holds waits
#    for its commit, then counts as recorded) and the subjects' keys fetched; then, still
#    before the lock, keys made for new subjects, digests keyed, leaves hashed and the rows
#    encoded for binary COPY with the block number left blank;
# 2. one pipeline: the chain's lock, the newest block, and the subjects' keys checked
#    unchanged (an erasure may have destroyed one since: then they are keyed again here);
# 3. the block number written into the encoded rows, which go by one COPY;
# 4. one pipeline: the block sealed, its rollups, the kept texts, COMMIT.
#
# A writer holding the lock never waits on one that has not taken it: ids it claimed are its
# own, and nothing else it writes under the lock can collide with a claim or a key made
# before it.

LATE_COLUMNS = ("block", "pos") + chain.CHAINED  # block first: its 8 bytes sit at a fixed offset
_HEAD = "SELECT number, root FROM chain_blocks ORDER BY number DESC LIMIT 1"
_SEAL = ("INSERT INTO chain_blocks (number, root, prev_root, count, first_at, last_at, "
         "sealed_at) VALUES (%s, %s, %s, %s, %s, %s, %s)")
_PAYLOADS = ("INSERT INTO decision_payloads (decision_id, subject, input_text, output_text) "
             "VALUES (%s, %s, %s, %s) ON CONFLICT (decision_id) DO NOTHING")
_BLOCK_AT = 6  # a binary COPY row: field count (2 bytes), the first field's length (4), its value


@functools.cache
def _formatter():
    """psycopg's C row formatter for binary COPY (psycopg[binary] or [c]), or None: then the
    block takes the lock first and streams its rows (:func:`insert_rows`)."""
    try:
        from psycopg import pq
        from psycopg._copy_base import _binary_signature, _binary_trailer, format_row_binary
    except ImportError:
        return None
    if pq.__impl__ == "python":  # the pure-Python formatter: no faster than streaming
        return None
    return format_row_binary, bytes(_binary_signature), bytes(_binary_trailer)


@contextlib.contextmanager
def _driver_errors(sql: str):
    import psycopg

    try:
        yield
    except psycopg.Error as exc:  # the driver's error in SQLAlchemy's shape (engine.translate)
        raise sa_exc.DBAPIError.instance(sql, None, exc, psycopg.Error) from exc


def late_ready(conn: Connection, store) -> bool:
    """Whether a block may take the chain's lock late: a partitioned ledger (0015 or later)
    and psycopg's C formatter."""
    if _formatter() is None:
        return False
    known = store.__dict__.setdefault("_pg_partitions", set())
    return bool(known) or _partitioned(conn)


def claim(conn: Connection, ids: list[str], subjects: str | None) -> tuple[set, dict]:
    """Round trip 1, before the lock: claim ``ids`` (sorted) and fetch the keys of
    ``subjects`` (a JSON array, or None); returns (ids claimed, subject -> key)."""
    from .subject_keys import PG_FETCH

    db = conn.connection.driver_connection
    joined = ",".join(ids)
    with _driver_errors(_CLAIM), db.cursor() as c1, db.cursor() as c2:
        with db.pipeline():
            if joined.count(",") == len(ids) - 1:
                c1.execute(_CLAIM, (joined,))
            else:  # an id with a comma in it (never one normalize() passed)
                c1.execute(_CLAIM_ARRAY, (ids,))
            if subjects is not None:
                c2.execute(PG_FETCH, (subjects,))
        claimed = {r[0] for r in c1.fetchall()}
        keys = {s: bytes(k) for s, k in c2.fetchall()} if subjects is not None else {}
    return claimed, keys


def make_keys(conn: Connection, subjects: set[str]) -> dict[str, bytes]:
    """Keys for subjects that had none (before the lock: see :func:`.subject_keys.pg_create`)."""
    from .subject_keys import PG_CREATE, pg_create

    db = conn.connection.driver_connection
    with _driver_errors(PG_CREATE), db.cursor() as cur:
        return pg_create(cur, subjects)


def encode(conn: Connection, rows: list[tuple]) -> tuple[bytearray, list[int]]:
    """``rows`` (:data:`LATE_COLUMNS` order, block 0) in binary COPY format, with the offset of
    each row's block value."""
    fmt = _formatter()[0]
    from psycopg import adapt, pq

    db = conn.connection.driver_connection
    tx = adapt.Transformer(db)
    registry = db.adapters.types
    tx.set_dumper_types([registry.get_oid(TYPES.get(c, "varchar")) for c in LATE_COLUMNS],
                        pq.Format.BINARY)
    out = bytearray()
    offsets = []
    mark = offsets.append
    with _driver_errors("COPY decisions (encoding)"):
        for row in rows:
            mark(len(out) + _BLOCK_AT)
            fmt(row, tx, out)
    return out, offsets


def lock_and_head(conn: Connection, lock_sql: str, subjects: str | None
                  ) -> tuple[int, str, str | None]:
    """Round trip 2: the chain's lock, then (new snapshots, after the lock is granted) the
    newest block and the fingerprint of ``subjects``' keys; returns (number, root, md5)."""
    from .subject_keys import PG_FINGERPRINT

    db = conn.connection.driver_connection
    with _driver_errors(lock_sql), db.cursor() as c1, db.cursor() as c2, db.cursor() as c3:
        with db.pipeline():
            c1.execute(lock_sql)
            c2.execute(_HEAD)
            if subjects is not None:
                c3.execute(PG_FINGERPRINT, (subjects,))
        head = c2.fetchone()
        fingerprint = c3.fetchone()[0] if subjects is not None else None
    number, root = head if head else (0, chain.GENESIS)
    return number, root, fingerprint


def copy_encoded(conn: Connection, data: bytearray, offsets: list[int], number: int) -> None:
    """Round trip 3: the block number written into each encoded row, then one COPY."""
    signature, trailer = _formatter()[1:]
    value = number.to_bytes(8, "big", signed=True)
    for at in offsets:
        data[at:at + 8] = value
    sql = f"COPY decisions ({', '.join(LATE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    db = conn.connection.driver_connection
    with _driver_errors(sql), db.cursor() as cur, cur.copy(sql) as copy:
        copy.write(signature + data + trailer)


def finish(conn: Connection, seal: tuple, rollup: tuple[str, dict] | None, payloads: list,
           *, commit: bool) -> None:
    """Round trip 4: the block's seal, its rollups, the kept texts and (``commit``) COMMIT,
    in one pipeline."""
    db = conn.connection.driver_connection
    with _driver_errors(_SEAL), db.cursor() as cur, db.pipeline():
        cur.execute(_SEAL, seal)
        if rollup is not None:
            cur.execute(*rollup)
        if payloads:
            cur.executemany(_PAYLOADS, payloads)
        if commit:
            db.commit()
