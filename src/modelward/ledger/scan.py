"""Scans of unbounded result sets, read a batch at a time on every backend.

On PostgreSQL a plain cursor receives the whole result set before the first row is handed
over (``check`` at 1M decisions held 975 MiB that way); :func:`streamed` declares a named
server-side cursor (psycopg's ``ServerCursor``) in the caller's transaction instead, so
the client holds one batch. It uses psycopg's cursor directly, not SQLAlchemy's
``stream_results``, whose result pre-buffers rows: reading its raw DBAPI cursor behind it
silently lost a row (and verify then called an intact chain broken). SQLite steps its own
cursor lazily already. Queries built with SQLAlchemy Core stream with
``execution_options(yield_per=…)``, which SQLAlchemy reads through the same kind of cursor.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

BATCH = 20000  # rows per round trip of a narrow scan (the chain reads decisions by chain.VERIFY_BATCH)
_names = itertools.count(1)


def fetched(cursor, size: int | None = None):
    """The rows of a DBAPI cursor, fetched ``size`` (default :data:`BATCH`) at a time."""
    size = size or BATCH
    return itertools.chain.from_iterable(iter(lambda: cursor.fetchmany(size), []))


def _server_side(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


@contextlib.contextmanager
def streamed(conn: Connection, sql: str, params: tuple | None = None, *,
             size: int | None = None) -> Iterator[Iterator[tuple]]:
    """The rows of ``sql`` (DBAPI paramstyle), as tuples, read ``size`` (default
    :data:`BATCH`) at a time; on PostgreSQL through a named server-side cursor, closed when
    the block ends."""
    size = size or BATCH
    if not _server_side(conn):
        result = conn.exec_driver_sql(sql, params) if params else conn.exec_driver_sql(sql)
        try:
            yield fetched(result.cursor, size)
        finally:
            result.close()
        return
    import psycopg

    driver = conn.connection.driver_connection
    cur = driver.cursor(name=f"mw_scan_{next(_names)}")
    try:
        try:
            cur.itersize = size
            cur.execute(sql, params)
        except psycopg.Error as exc:
            raise _translated(sql, exc) from exc
        yield _guarded(sql, fetched(cur, size))
    finally:
        with contextlib.suppress(psycopg.Error):
            cur.close()


def _guarded(sql: str, rows: Iterator[tuple]) -> Iterator[tuple]:
    import psycopg

    try:
        yield from rows
    except psycopg.Error as exc:
        raise _translated(sql, exc) from exc


def _translated(sql: str, exc: Exception) -> sa_exc.DBAPIError:
    """The driver's error in SQLAlchemy's shape, so the ledger's one translation
    (:func:`.engine.translate`) applies."""
    import psycopg

    return sa_exc.DBAPIError.instance(sql, None, exc, psycopg.Error)
