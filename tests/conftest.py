"""One real-database ``ledger`` fixture over SQLite (memory and file) and PostgreSQL.

PostgreSQL runs when MODELWARD_TEST_POSTGRES_URL is set (each test gets its own schema);
under CI (CI=true) it is required, so a missing server fails instead of skipping."""

from __future__ import annotations

import os
import subprocess
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

import modelward
from modelward.settings import Settings

PG_URL = os.environ.get("MODELWARD_TEST_POSTGRES_URL")
TESTER = "tester@example.com"  # who runs the CLI in tests (git's user.email)
BACKENDS = ["sqlite-memory", "sqlite-file", "postgres"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Every test runs in its own directory with no MODELWARD_* settings leaking in."""
    for key in list(os.environ):
        if key.startswith("MODELWARD_") and key != "MODELWARD_TEST_POSTGRES_URL":
            monkeypatch.delenv(key, raising=False)
    # git's identity (the CLI's last default for --actor/--as) is the tester's, not the
    # machine's: no global or system config, one user.email from the environment
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.email")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", TESTER)
    monkeypatch.chdir(tmp_path)


def _pg_schema_url(schema: str) -> str:
    base = sa.make_url(PG_URL)
    return base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("MODELWARD_TEST_POSTGRES_URL is required under CI")
        pytest.skip("MODELWARD_TEST_POSTGRES_URL not set")
    schema = "mw_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield _pg_schema_url(schema)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def database_url(backend: str, tmp_path, request) -> str:
    if backend == "sqlite-memory":
        return "sqlite://"
    if backend == "sqlite-file":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=BACKENDS)
def backend_url(request, tmp_path):
    """A database URL for each backend."""
    return database_url(request.param, tmp_path, request)


@pytest.fixture
def ledger(backend_url, tmp_path):
    """An open, initialised ledger (modelward.Ledger) on each backend."""
    led = modelward.open(str(tmp_path / "home"), database_url=backend_url)
    yield led
    led.close()


@pytest.fixture
def store(ledger):
    return ledger.store


@pytest.fixture(params=["sqlite-file", "postgres"])
def cli_ledger(request, tmp_path):
    """The one ledger for command tests: open on a database a CLI invocation can reach too
    (memory SQLite cannot be shared), on SQLite (file) and PostgreSQL. ``store`` and
    ``ledger`` set things up; ``args`` (``--home``, ``--database-url``) go first on the
    command line; ``tmp`` is the test's directory."""
    url = database_url(request.param, tmp_path, request)
    home = str(tmp_path / "home")
    led = modelward.open(home, database_url=url)
    yield SimpleNamespace(ledger=led, store=led.store, tmp=tmp_path, home=home, url=url,
                          args=["--home", home, "--database-url", url])
    led.close()


@pytest.fixture
def settings_for(tmp_path):
    def make(**overrides) -> Settings:
        overrides.setdefault("home", str(tmp_path / "home"))
        return Settings(overrides)
    return make


# --- a local S3-compatible server (moto's standalone server, a real HTTP process) ----------
@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a moto server started for this test session on a free port."""
    from tests.s3server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def s3_url(s3_server, monkeypatch):
    """``s3://<fresh bucket>/blobs`` with the standard AWS environment pointing at the local
    server (the way a team configures credentials); returns the URL."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.new_bucket()
    return f"s3://{bucket}/blobs"


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 1 MiB tmpfs mounted for the test (a full disk on demand); skipped where
    mounting is not permitted."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)
