"""Connecting to the ledger database, running migrations, and translating database
failures into :class:`~modelward.errors.StorageError` once, here at the boundary."""

from __future__ import annotations

import ast
import contextlib
import functools
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from ..errors import ConflictError, ModelwardError, SchemaError, StorageError
from ..filemodes import create_file, make_dirs
from ..settings import Settings
from .blobs import open_blob_store

MIGRATIONS = Path(__file__).parent / "migrations"
def in_memory_sqlite(url: sa.URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database, which no other connection of the
    engine (beyond a shared pool's one) and no other process sees."""
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory")


_PG_CHAIN_LOCK = 0x6D77_6368  # advisory lock key ("mwch") serialising chain appends
CHAIN_LOCK_SQL = f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})"
_PG_SCHEMA_LOCK = 0x6D77_7363  # ("mwsc") serialising migrations of processes starting together


_alembic_quiet_lock = threading.Lock()
_alembic_quiet_depth = 0


@contextlib.contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic logs every migration step at INFO; in a host application that logs INFO
    they would read as its own output. Quiet (warnings only) while we migrate, unless the
    ``alembic`` logger has a level of its own (``modelward --verbose`` sets INFO)."""
    global _alembic_quiet_depth
    logger = logging.getLogger("alembic")
    with _alembic_quiet_lock:
        quiet = _alembic_quiet_depth > 0 or logger.level == logging.NOTSET
        if quiet:
            _alembic_quiet_depth += 1
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        if quiet:
            with _alembic_quiet_lock:
                _alembic_quiet_depth -= 1
                if _alembic_quiet_depth == 0:
                    logger.setLevel(logging.NOTSET)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Drive transactions ourselves (pysqlite's implicit BEGIN cannot be IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        # 16 KiB pages for a new database (a no-op on an existing one): appends cost ~20% less
        # CPU than with 4 KiB. The WAL is fsynced at each checkpoint (every 1000 pages), so
        # a power loss may now roll back up to 16 MiB of the latest commits instead of 4 MiB;
        # a process crash loses nothing committed either way (docs/benchmarks.md).
        cur.execute("PRAGMA page_size=16384")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front so two processes never deadlock upgrading
        # a read lock; readers use a plain deferred BEGIN and never block writers (WAL).
        conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get("mw_write") else "BEGIN"
        )


def translate(exc: Exception) -> StorageError:
    text = str(getattr(exc, "orig", exc)) or exc.__class__.__name__
    low = text.lower()
    if "no such table" in low or ("relation" in low and "does not exist" in low):
        return SchemaError(
            f"the ledger database is not initialised ({text.splitlines()[0]})",
            hint="run `modelward init` (or `modelward db upgrade`)",
        )
    if "database is locked" in low or "could not serialize" in low or "deadlock" in low:
        return ConflictError(f"the ledger is busy: {text.splitlines()[0]}", hint="retry")
    return StorageError(f"ledger storage failed: {text.splitlines()[0]}")


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    try:
        yield
    except sa_exc.StatementError as exc:
        # a value refused while binding (schema.FiniteFloat) keeps its own clear error
        if isinstance(exc.orig, ModelwardError):
            raise exc.orig from None
        raise translate(exc) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc) from exc


class Store:
    """The database engine and blob store of one ledger."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.resolved_database_url
        url = sa.make_url(self.url)
        self.dialect = url.get_backend_name()
        self.driver = url.get_driver_name()  # "psycopg", "pysqlite", ...
        kwargs: dict = {}
        # An in-memory SQLite database is one connection shared by every thread (StaticPool):
        # transactions on it must take turns.
        self._turn = contextlib.nullcontext()
        self._sqlite_file: Path | None = None
        if self.dialect == "sqlite":
            db = url.database
            if db and db != ":memory:":
                self._sqlite_file = Path(db)  # created at the first connection (below)
            else:
                # one shared in-memory database for every connection of this engine
                kwargs["poolclass"] = sa.pool.StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
                self._turn = threading.RLock()
        elif self.dialect == "postgresql":
            kwargs["pool_pre_ping"] = True
        else:
            raise StorageError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        with storage_errors():
            self.engine = sa.create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        if self._sqlite_file is not None:
            path, umask = self._sqlite_file, settings.umask_bits

            @event.listens_for(self.engine, "do_connect")
            def _owner_only(dialect, conn_rec, cargs, cparams):
                # created with the mode `umask` gives (SQLite gives the WAL and SHM files the
                # database file's mode): it holds raw decision text. Not before a connection
                # is made, so a read of a ledger that is not there leaves nothing behind.
                make_dirs(path.parent, umask)
                create_file(path, umask)
        self.blobs = open_blob_store(settings.blob_location, cache_dir=settings.cache_path)
        self.paramstyle = "?" if self.dialect == "sqlite" else "%s"

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction on one snapshot of the ledger."""
        with self._turn, storage_errors(), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # At READ COMMITTED every statement sees new commits: verify() read the
                # chain_blocks, then met decisions of a block sealed since and called the
                # chain broken. SQLite's WAL read transaction is one snapshot already.
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self, *, chain: bool = True, late_lock: bool = False) -> Iterator[Connection]:
        """One write transaction. Every write of a chained table seals its rows into a chain
        block in the same transaction, so writers take turns: PostgreSQL takes the chain's
        advisory lock first thing (before any other lock, so two writers never wait on each
        other crosswise); SQLite's BEGIN IMMEDIATE already serialises writers. ``chain``
        is kept for callers that name it; every write transaction takes the lock.

        ``late_lock`` (PostgreSQL): the caller takes the lock itself (:data:`CHAIN_LOCK_SQL`)
        before it writes anything chained or reads the chain's head. The decision block path
        (:mod:`.pgcopy`) claims its ids and keys and encodes its rows first, so writers
        overlap in that work; nothing it does before the lock waits on a lock holder."""
        with self._turn, storage_errors(), self.engine.connect() as conn:
            conn.execution_options(mw_write=True)
            with conn.begin():
                if self.dialect == "postgresql" and not late_lock:
                    conn.exec_driver_sql(CHAIN_LOCK_SQL)
                yield conn

    # --- schema -----------------------------------------------------------------------
    def _alembic_config(self, conn: Connection):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def upgrade(self) -> tuple[str | None, str]:
        """Run every pending migration; returns (revision before, revision after)."""
        with _alembic_quiet():  # importing alembic logs its plugins at INFO
            from alembic import command

        with self._migration_lock():
            return self._upgrade(command)

    @contextlib.contextmanager
    def _migration_lock(self):
        """One process migrates a SQLite file at a time: an exclusive lock on
        ``ledger.db.migrate-lock`` beside it. (BEGIN IMMEDIATE alone does not do it: a
        migration that commits part-way lets a process that waited start again from the
        revision it read, and run a migration twice.) PostgreSQL takes an advisory lock in
        the upgrade's transaction instead."""
        if self._sqlite_file is None:
            yield
            return
        import fcntl

        path = self._sqlite_file.with_name(self._sqlite_file.name + ".migrate-lock")
        make_dirs(path.parent, self.settings.umask_bits)
        create_file(path, self.settings.umask_bits)
        with open(path, "rb") as fh:  # noqa: PTH123
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _upgrade(self, command) -> tuple[str | None, str]:
        before = self.revision()  # read under the lock: a waiter sees the schema at head
        self._refuse_newer(before)  # Alembic cannot go from a revision it does not know
        with storage_errors(), self.engine.connect() as conn:
            conn.execution_options(mw_write=True)
            if self.dialect == "postgresql":
                # Without it, processes opening a fresh database at once all run CREATE
                # TABLE and all but one fail; the waiters then find the schema at head.
                # (SQLite's BEGIN IMMEDIATE already serialises them.)
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
            with _alembic_quiet():
                command.upgrade(self._alembic_config(conn), "head")
            conn.commit()
        return before, self.revision() or "none"

    def _revision_after_migrations(self) -> str | None:
        try:
            with self._migration_lock():
                return self.revision()
        except OSError:  # no lock file can be made beside it (a read-only directory)
            return self.revision()

    def revision(self) -> str | None:
        with storage_errors(), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def head_revision(self) -> str:
        return head_revision()

    def _missing_sqlite_file(self) -> bool:
        """A SQLite ledger file that does not exist: connecting would create it empty."""
        return self._sqlite_file is not None and not self._sqlite_file.exists()

    def _refuse_newer(self, current: str | None) -> None:
        if current is not None and current not in known_revisions():
            raise SchemaError(
                f"the ledger at {self.display_url} has schema revision {current}, written by "
                f"a newer modelward; this one knows revisions up to {self.head_revision()}",
                hint="upgrade modelward (pip install -U modelward) to read or change it")

    def ensure_schema(self, *, create: bool) -> None:
        if not create and self._missing_sqlite_file():
            # a read must not leave an empty ledger.db behind where none was
            raise SchemaError(f"no modelward ledger at {self.display_url}",
                              hint="run `modelward init`")
        current = self.revision()
        if current == self.head_revision():
            return
        self._refuse_newer(current)
        if current is not None and self._sqlite_file is not None:
            # Another process may be migrating this file right now (a fresh ledger opened
            # by several processes at once: its revision moves through every migration
            # that commits on its own); wait for its lock, then read the revision again.
            current = self._revision_after_migrations()
            if current == self.head_revision():
                return
        if current is None and create:
            self.upgrade()
            return
        if current is None:
            raise SchemaError(f"no modelward ledger at {self.display_url}",
                              hint="run `modelward init`")
        raise SchemaError(f"the ledger schema is at revision {current}, this modelward needs "
                          f"{self.head_revision()}", hint="run `modelward db upgrade`")

    @property
    def display_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


_ASSIGN = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


@functools.cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision, every revision named as a parent) of the migration scripts, read
    from their ``revision`` and ``down_revision`` lines without importing Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGN.findall(path.read_text()))
        if "revision" not in found:
            continue
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        parents.update([down] if isinstance(down, str) else (down or ()))
    return frozenset(revisions), frozenset(parents)


def known_revisions() -> frozenset[str]:
    """Every schema revision this modelward can read or upgrade from."""
    return _revisions()[0]


@functools.cache
def head_revision() -> str:
    """The newest migration's revision, read from the scripts' ``revision`` and
    ``down_revision`` lines without importing Alembic (which costs every command a third of
    a second): the one revision no other names as its parent. tests/cli/test_startup.py
    holds it equal to Alembic's own answer."""
    revisions, parents = _revisions()
    heads = revisions - parents
    if len(heads) != 1:  # a branched history: Alembic says what is wrong
        with _alembic_quiet():
            from alembic.script import ScriptDirectory

            return ScriptDirectory(str(MIGRATIONS)).get_current_head()
    return next(iter(heads))

