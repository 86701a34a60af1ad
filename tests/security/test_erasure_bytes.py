"""Erased text is gone from the SQLite database file and its WAL, not only from the row."""

from __future__ import annotations

from pathlib import Path

import modelward
from modelward.ledger import chain, decisions

SECRET = "date of birth 1987-04-23, card 4111-1111-1111-1111"


def _bytes_of(db: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-journal"):
        path = Path(str(db) + suffix)
        if path.exists():
            out += path.read_bytes()
    return out


def test_erased_text_is_gone_from_the_file_and_the_wal(tmp_path):
    db = tmp_path / "ledger.db"
    led = modelward.open(str(tmp_path / "home"), database_url=f"sqlite:///{db}")
    try:
        rows, payloads = [], []
        for i in range(300):  # enough rows for several pages and a page split or two
            subject = "victim" if i % 50 == 7 else f"u{i}"
            text = f"{SECRET} #{i}" if subject == "victim" else f"ordinary question {i} " * 5
            if i == 57:  # a long text spills onto overflow pages, freed when it is erased
                text = f"{SECRET} (long) " + "lorem ipsum " * 3000
            row, payload = decisions.normalize({"subject": subject, "input_text": text,
                                                "output_text": f"answer {i} " + "x" * 200})
            rows.append(row)
            payloads.append(payload)
            if len(rows) == 100:
                decisions.append(led.store, rows, payloads)
                rows, payloads = [], []
        with led.store.engine.connect() as conn:  # as an older ledger: the text is in the file
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        assert SECRET.encode() in db.read_bytes()
        assert decisions.erase_subject(led.store, "victim") == 6
        data = _bytes_of(db)
        assert SECRET.encode() not in data
        assert b"1987-04-23" not in data
        assert b"ordinary question 8" in data  # what was not erased is still there
        assert Path(str(db) + "-wal").stat().st_size == 0
        with led.store.read() as conn:
            assert chain.verify(conn).ok  # the erasure is a chained record of its own
    finally:
        led.close()
