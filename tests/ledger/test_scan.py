"""Scans of unbounded result sets (ledger/scan.py): every row comes back, however the
batches fall, and on PostgreSQL through a named server-side cursor.

The failure this guards against: SQLAlchemy's ``stream_results`` pre-buffers rows, and
reading its raw DBAPI cursor behind it silently lost one; verify then called an intact
chain broken."""

from __future__ import annotations

import pytest

from modelward.ledger import chain, decisions, records
from modelward.ledger import scan as ledger_scan


def _fill(store, n: int, per_block: int) -> list[str]:
    rows = [decisions.normalize({"subject": f"u{i}"})[0] for i in range(n)]
    for i in range(0, n, per_block):
        decisions.append(store, rows[i:i + per_block])
    return [r[0] for r in rows]


@pytest.mark.parametrize("size", [1, 7, 64, 65, 1000])
def test_a_scan_returns_every_row_across_batch_boundaries(store, size):
    ids = _fill(store, 130, 65)  # 130 = 2 × 65: a batch ends exactly at the last row for 65
    with store.read() as conn:
        with ledger_scan.streamed(conn, "SELECT id FROM decisions ORDER BY block, pos",
                                  size=size) as rows:
            got = [r[0] for r in rows]
    assert got == ids
    with store.read() as conn:
        report = chain.verify(conn)
    assert report.ok and report.decisions == 130


def test_a_scan_on_postgres_reads_through_a_named_cursor(store):
    if store.dialect != "postgresql":
        pytest.skip("SQLite steps its cursor lazily already")
    _fill(store, 100, 100)
    with store.read() as conn:
        with ledger_scan.streamed(conn, "SELECT id FROM decisions", size=10) as rows:
            first = next(rows)
            open_cursors = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_cursors WHERE left(name, 8) = 'mw_scan_'").scalar()
            rest = list(rows)
        after = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_cursors WHERE left(name, 8) = 'mw_scan_'").scalar()
    assert (open_cursors, after) == (1, 0)  # declared on the server, closed at the end
    assert len([first, *rest]) == 100


def test_verify_streams_and_still_counts_every_row_on_small_batches(store, monkeypatch):
    """verify and the records' verify read through :func:`streamed`: with a batch size that
    splits blocks and record blocks, every decision and record is still read once."""
    _fill(store, 50, 20)
    with store.read() as conn:
        whole = chain.verify(conn)
    monkeypatch.setattr(ledger_scan, "BATCH", 3)
    with store.read() as conn:
        small = chain.verify(conn)
        assert records.verify_records(conn, [], [], set()) == whole.records
    assert small.ok and (small.decisions, small.records) == (whole.decisions, whole.records) \
        and small.decisions == 50


def test_a_bad_scan_is_a_storage_error(store):
    from modelward.errors import StorageError

    with pytest.raises(StorageError):
        with store.read() as conn:
            with ledger_scan.streamed(conn, "SELECT no_such_column FROM decisions") as rows:
                list(rows)
