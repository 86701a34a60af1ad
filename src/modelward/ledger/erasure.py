"""Erasing a subject: its kept text and the key of its chained digests (crypto-shredding).

One write transaction nulls the subject's kept input/output text (``decision_payloads``),
chains an ``erasures`` record per decision, and deletes the subject's key
(:mod:`.subject_keys`). The chained decisions never change, so ``verify`` still passes;
without the key their keyed digests can no longer be tested against guesses.

Bytes, not only rows: on SQLite the rows are rewritten with ``secure_delete`` on (freed
bytes and pages are zeroed) and the WAL, which still holds the pages as first written, is
checkpointed into the database file and truncated. On PostgreSQL the old row versions stay
in the table files until ``VACUUM`` (space reusable) or ``VACUUM FULL`` (the table
rewritten): :func:`vacuum` runs the latter on the two tables (docs/reliability.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import ValidationError
from ..timefmt import now_us
from . import records, subject_keys
from .decision_fields import nfc
from .engine import Store, storage_errors
from .schema import decision_payloads


@dataclass
class ErasureReport:
    subject: str
    texts: int  # decisions whose kept text was erased now
    key_destroyed: bool  # the subject's digest key existed and is gone
    plain_digests: int  # the subject's decisions chaining plain sha256 digests (unshreddable)
    wal_truncated: bool | None = None  # SQLite: the WAL holds no old page any more

    def to_dict(self) -> dict:
        return {"subject": self.subject, "erased": self.texts,
                "key_destroyed": self.key_destroyed, "plain_digests": self.plain_digests,
                "wal_truncated": self.wal_truncated}


def erase(store: Store, subject: str) -> ErasureReport:
    """Erase the subject's kept text and destroy its digest key; the chained record stays."""
    if not subject:
        raise ValidationError("name the subject whose text to erase", field="subject")
    subject = nfc(subject)  # as it was recorded
    sqlite = store.dialect == "sqlite"
    with store.write() as conn:
        ids = list(conn.execute(
            sa.select(decision_payloads.c.decision_id)
            .where(decision_payloads.c.subject == subject,
                   decision_payloads.c.erased_at.is_(None))).scalars())
        if sqlite:  # the freed bytes of the rewritten rows are zeroed, not left in the page
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        try:
            result = conn.execute(
                decision_payloads.update()
                .where(decision_payloads.c.subject == subject,
                       decision_payloads.c.erased_at.is_(None))
                .values(input_text=None, output_text=None, erased_at=now_us()))
            key_destroyed = subject_keys.destroy(conn, subject)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete = OFF")
        records.record(conn, "erasures", ids)
        report = ErasureReport(subject, result.rowcount, key_destroyed,
                               subject_keys.plain_digest_count(conn, subject))
    if sqlite:  # also when nothing was erased now: finishes what a busy reader held up
        report.wal_truncated = checkpoint(store)
    return report


def checkpoint(store: Store) -> bool:
    """SQLite: copy the WAL's pages into the database file and truncate the WAL to nothing
    (it still holds the pages as they were written, text and keys included), waiting at
    most 2 s for readers of older snapshots, not the writers' 60 s. False when a reader
    kept it from finishing: the next checkpoint does."""
    with storage_errors(), store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA busy_timeout = 2000")
        try:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()[0]
        finally:
            conn.exec_driver_sql("PRAGMA busy_timeout = 60000")
    return not busy


# Transactions in this database that began before ``since`` and still hold a snapshot or
# a transaction id: VACUUM keeps every row version they might see (OldestXmin).
_OLDER_TRANSACTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) "
    "AND xact_start < to_timestamp(%s / 1e6)")


@dataclass
class VacuumReport:
    tables: list[str]
    held_back: int = 0  # transactions older than the erasure still open when it ran


def vacuum(store: Store, *, since: int | None = None, wait: float = 30.0) -> VacuumReport:
    """PostgreSQL: ``VACUUM FULL`` the kept-text and key tables, so no old row version (an
    erased text, a destroyed key) is left in their files. It locks each table while it
    rewrites it, and keeps a row version any transaction open since before ``since`` (the
    erasure) might still see: it first waits up to ``wait`` seconds for those to end, and
    reports how many were still open (run it again later). SQLite needs no vacuum."""
    if store.dialect != "postgresql":
        return VacuumReport([])
    since = now_us() if since is None else since
    tables = ["subject_keys", "decision_payloads"]
    with storage_errors(), store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # not in a transaction
        deadline = time.monotonic() + wait
        while (held := conn.exec_driver_sql(_OLDER_TRANSACTIONS, (since,)).scalar()) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        for table in tables:
            conn.exec_driver_sql(f"VACUUM FULL {table}")
    return VacuumReport(tables, held)
