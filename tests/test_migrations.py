"""Alembic migrations on every backend: they build exactly ledger/schema.py, run idempotently,
upgrade an older ledger in place, and refuse to open a database that is not at head."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import modelward
from modelward.errors import SchemaError
from modelward.ledger import decisions, partitions
from modelward.ledger.engine import Store
from modelward.ledger.schema import metadata
from modelward.settings import Settings


def make_store(url, tmp_path) -> Store:
    return Store(Settings({"home": str(tmp_path / "home"), "database_url": url}, env={}))


def _declared(obj, name, type_, reflected, compare_to) -> bool:
    # decisions' monthly partitions (PostgreSQL) are the ledger's, not schema.py's
    return not (type_ == "table" and partitions.is_partition(name))


def differences(store: Store) -> list:
    with store.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(
            conn, opts={"include_object": _declared}), metadata)


def upgrade_to(store: Store, revision: str) -> None:
    with store.engine.connect() as conn:
        conn.execution_options(mw_write=True)
        command.upgrade(store._alembic_config(conn), revision)
        conn.commit()


def test_migrated_database_matches_schema(backend_url, tmp_path):
    store = make_store(backend_url, tmp_path)
    try:
        assert store.revision() is None
        before, after = store.upgrade()
        assert (before, after) == (None, store.head_revision())
        assert differences(store) == []
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        store.dispose()


def test_upgrade_is_idempotent_and_keeps_data(backend_url, tmp_path):
    store = make_store(backend_url, tmp_path)
    try:
        store.upgrade()
        row = decisions.normalize({"subject": "kept"})[0]
        decisions.append(store, [row])
        head = store.head_revision()
        assert store.upgrade() == (head, head)
        assert store.upgrade() == (head, head)
        store.ensure_schema(create=False)
        store.ensure_schema(create=True)
        with store.read() as conn:
            assert decisions.get(conn, row[0]).subject == "kept"
        assert differences(store) == []
    finally:
        store.dispose()


def test_an_older_ledger_is_refused_then_upgraded_in_place(backend_url, tmp_path):
    store = make_store(backend_url, tmp_path)
    try:
        upgrade_to(store, "0001")
        assert store.revision() == "0001"
        row = decisions.normalize({"subject": "from 0001"})[0]
        decisions.append(store, [row])
        if store.head_revision() != "0001":
            with pytest.raises(SchemaError) as exc:
                store.ensure_schema(create=True)  # never migrates behind the user's back
            assert exc.value.message == (f"the ledger schema is at revision 0001, this modelward "
                                         f"needs {store.head_revision()}")
            assert exc.value.hint == "run `modelward db upgrade`"
        assert store.upgrade() == ("0001", store.head_revision())
        assert differences(store) == []
        with store.read() as conn:
            assert decisions.get(conn, row[0]).subject == "from 0001"
    finally:
        store.dispose()


def test_downgrade_to_nothing_and_back(backend_url, tmp_path):
    store = make_store(backend_url, tmp_path)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            conn.execution_options(mw_write=True)
            command.downgrade(store._alembic_config(conn), "base")
            conn.commit()
        with store.engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert left == set()
        store.upgrade()
        assert differences(store) == []
    finally:
        store.dispose()


def test_open_without_create_on_an_empty_database(backend_url, tmp_path):
    with pytest.raises(SchemaError) as exc:
        modelward.open(str(tmp_path / "home"), database_url=backend_url, create=False)
    assert exc.value.message.startswith("no modelward ledger at ")
    assert exc.value.hint == "run `modelward init`"
    store = make_store(backend_url, tmp_path)
    try:  # reading an uninitialised database is a SchemaError too, never a raw SQL error
        with pytest.raises(SchemaError, match="the ledger database is not initialised") as exc:
            with store.read() as conn:
                decisions.count(conn)
        assert exc.value.hint == "run `modelward init` (or `modelward db upgrade`)"
    finally:
        store.dispose()


def test_processes_opening_a_fresh_database_together(backend_url, tmp_path):
    """Serving processes starting at once on a new database: one creates the schema, the
    others wait for it; none fails."""
    if backend_url == "sqlite://":
        pytest.skip("an in-memory database lives in one process")
    script = ("import sys, modelward\n"
              "with modelward.open(sys.argv[1], database_url=sys.argv[2]) as led:\n"
              "    led.record(subject='started')\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"h{i}"), backend_url],
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    with modelward.open(str(tmp_path / "h"), database_url=backend_url, create=False) as led:
        with led.store.read() as conn:
            assert decisions.count(conn) == 4


def test_a_process_opening_a_file_mid_migration_waits_for_the_migrating_one(tmp_path):
    """The race behind the test above, made deterministic: while one process holds the
    migration lock with the schema part-way (a revision behind head), another opening the
    file waits for the lock and then finds the schema at head, instead of refusing it."""
    import fcntl
    import threading

    store = make_store("", tmp_path)
    store.ensure_schema(create=True)
    head = store.head_revision()
    lock = tmp_path / "home" / "ledger.db.migrate-lock"
    with open(lock, "rb") as fh:  # noqa: PTH123
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0011_subject_keys'")
        outcome: list = []

        def open_it():
            try:
                make_store("", tmp_path).ensure_schema(create=True)
                outcome.append("opened")
            except SchemaError as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=open_it)
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and not outcome  # waiting on the lock, not refusing
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{head}'")
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    waiter.join(30)
    assert outcome == ["opened"]


def test_a_ledger_behind_head_is_still_refused_after_the_wait(tmp_path):
    store = make_store("", tmp_path)
    store.ensure_schema(create=True)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0011_subject_keys'")
    with pytest.raises(SchemaError, match="modelward db upgrade|0011_subject_keys"):
        make_store("", tmp_path).ensure_schema(create=True)


def _cli(*args, env_home):
    return subprocess.run([sys.executable, "-m", "modelward.cli.app", "--home", str(env_home),
                           *args], capture_output=True, text=True, timeout=120)


def test_a_read_on_a_missing_ledger_is_refused_and_creates_nothing(tmp_path):
    home = tmp_path / "nowhere"
    for args in (("alias", "list"), ("check",), ("verify",), ("artifacts",)):
        done = _cli(*args, env_home=home)
        assert done.returncode == 2, (args, done.stderr)
        assert "no modelward ledger at" in done.stderr and "modelward init" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (home / "ledger.db").exists(), args


def test_a_ledger_of_a_newer_schema_is_refused_by_every_command(backend_url, tmp_path):
    """A ledger a newer modelward migrated: reads, `init` and `db upgrade` all stop with one
    clear error (exit 2) naming the revision; nothing crashes and nothing is changed."""
    store = make_store(backend_url, tmp_path)
    store.ensure_schema(create=True)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    with pytest.raises(SchemaError) as exc:
        store.ensure_schema(create=False)
    assert "0999_from_the_future" in exc.value.message and "newer modelward" in exc.value.message
    for create in (True,):
        with pytest.raises(SchemaError):
            store.ensure_schema(create=create)
    with pytest.raises(SchemaError) as exc:
        store.upgrade()
    assert "upgrade modelward" in exc.value.hint
    assert store.revision() == "0999_from_the_future"
    store.dispose()
    if backend_url.startswith("sqlite:///"):  # the CLI, on a file it can name
        home = tmp_path / "home"
        led = modelward.open(str(home))
        led.close()
        s = Store(Settings({"home": str(home)}))
        with s.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0999_from_the_future'")
        s.dispose()
        for args in (("alias", "list"), ("init",), ("db", "upgrade")):
            done = _cli(*args, env_home=home)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert "newer modelward" in done.stderr and "Traceback" not in done.stderr
