"""``modelward archive``: sealed blocks to Parquet on a blob store (a directory and a real
S3-compatible server), exact round trip of every chained column, verify --full and audit of
archived decisions, DuckDB over the files, crash points, retention references, PostgreSQL
partitions dropped whole."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from modelward.errors import UnknownDecisionError, ValidationError
from modelward.ledger import archives, chain, decisions, parquet_blocks, partitions
from modelward.ledger import retention as ledger_retention
from modelward.ledger.schema import archived_blocks
from modelward.ledger.schema import archives as archives_table
from modelward.ledger.schema import decisions as decisions_table
from modelward.registry import archive, audit, parallel_verify
from modelward.timefmt import now_us

DAY = 86_400_000_000
MODEL = "sha256:" + "a" * 64
PROMPT = "sha256:" + "b" * 64


def _rows(n: int, at: int, start: int = 0) -> list[tuple]:
    """Decisions whose chained columns exercise the round trip: floats that do not print
    short, None beside empty strings, Unicode (NFC, astral, RTL), 18-digit integers."""
    out = []
    for i in range(start, start + n):
        fields = {"at": at + i, "subject": f"u{i}", "model_digest": MODEL,
                  "alias": "chat/v1" if i % 3 else "",
                  "process": ["host-ä", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "שלום", None][i % 4],
                  "vendor_model_id": "" if i % 2 else None,
                  "segments": {"tier": ["free", "pro", "ünï"][i % 3], "n": 123456789012345678},
                  "extra": {"big": 987654321098765432 + i, "f": 0.1 * i, "e": 1e-300, "s": ""},
                  "gate": {"threshold": [0.1 + 0.2, 1e-300, 2.0 ** 52 + 0.5, -1.5, None][i % 5],
                           "candidates": 2_000_000_000 if i % 2 else 7, "passed": i % 7}}
        if i % 2:
            fields["prompt_digest"] = PROMPT
        out.append(decisions.normalize(fields)[0])
    return out


def _ledger_with_history(store, old_blocks: int = 3, per_block: int = 50) -> int:
    now = now_us()
    for b in range(old_blocks):
        decisions.append(store, _rows(per_block, now - 200 * DAY + b * 1000, b * per_block))
    decisions.append(store, _rows(per_block, now - DAY, 10_000))  # recent: stays
    return now


def _full(store):
    with store.read() as conn:
        return parallel_verify.verify(conn)


def _stored(store) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(decisions_table)).scalar()


def test_archive_round_trips_every_chained_column_and_verifies(store, tmp_path):
    now = _ledger_with_history(store)
    with store.read() as conn:
        before = archives.rows_of(conn, [1, 2, 3])
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "arch"), now=now)
    assert [len(f.blocks) for f in report.files] == [3]
    assert report.decisions == 150 and _stored(store) == 50
    f = report.files[0]
    back = parquet_blocks.decode((tmp_path / "arch" / f.key).read_bytes())
    assert back == before  # bit for bit: floats, None vs "", Unicode, 18-digit ints
    v = _full(store)
    assert v.ok, v.problems
    assert v.archived == 3 and v.all_decisions == 200
    with store.read() as conn:  # the records are chained
        assert chain.verify(conn).ok
        assert len(archives.files(conn)) == 1
    again = archive.archive(store, older_than="90d", to=str(tmp_path / "arch"), now=now)
    assert again.files == []  # nothing left to archive: never twice


def test_audit_proves_an_archived_decision_from_its_file(store, tmp_path):
    now = _ledger_with_history(store)
    with store.read() as conn:
        wanted = conn.execute(sa.select(decisions_table).where(decisions_table.c.block == 2)
                              .order_by(decisions_table.c.pos).offset(7).limit(1)).first()
    archive.archive(store, older_than="90d", to=str(tmp_path / "arch"), now=now)
    report = audit.audit_decision(store, wanted.id, verify_payloads=False)
    assert report.decision.id == wanted.id and report.decision.block == 2
    assert report.decision.pos == 7 and report.decision.gate_threshold == wanted.gate_threshold
    assert report.chain.verifies and report.chain.links and report.chain.how.startswith("archive")
    assert not [p for p in report.problems if p.get("code", "").startswith("chain")]
    with pytest.raises(UnknownDecisionError):
        audit.audit_decision(store, "01890000-0000-7000-8000-000000000000")


def test_duckdb_queries_the_archive_files(store, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    now = _ledger_with_history(store)
    archive.archive(store, older_than="90d", to=str(tmp_path / "arch"), now=now)
    files = sorted(str(p) for p in (tmp_path / "arch" / "decisions").rglob("*") if p.is_file())
    assert len(files) == 1
    month = parquet_blocks.month_of(now - 200 * DAY)
    con = duckdb.connect()
    glob = f"read_parquet('{tmp_path}/arch/decisions/month=*/*.parquet', hive_partitioning=true)"
    got = con.execute("SELECT count(*), count(DISTINCT block), min(pos), max(pos), "
                      "sum(gate_passed), count(*) FILTER (WHERE prompt_digest IS NOT NULL) "
                      f"FROM {glob} WHERE month = ?", [month]).fetchone()
    assert got == (150, 3, 0, 49, sum(i % 7 for i in range(150)), 75)
    assert con.execute(f"SELECT count(*) FROM {glob} WHERE month = '1999-01'").fetchone() == (0,)
    tiers = dict(con.execute("SELECT json_extract_string(segments, '$.tier'), count(*) FROM "
                             f"read_parquet('{files[0]}') GROUP BY 1").fetchall())
    assert tiers == {"free": 50, "pro": 50, "ünï": 50}


def test_archive_to_s3(store, s3_url):
    now = _ledger_with_history(store, old_blocks=2)
    report = archive.archive(store, older_than="90d", to=s3_url, now=now)
    assert report.files[0].url == s3_url and _stored(store) == 50
    assert _full(store).ok
    with store.read() as conn:
        some = archives.locate(conn, archives.blocks_of(conn)[0].min_id)
    assert some and some[0].url == s3_url


def test_an_object_deleted_from_s3_is_reported(store, s3_url, s3_server):
    now = _ledger_with_history(store, old_blocks=2)
    f = archive.archive(store, older_than="90d", to=s3_url, now=now).files[0]
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    s3_server.client().delete_object(Bucket=bucket, Key=f"{prefix}/{f.key}")
    report = _full(store)
    assert {p.block for p in report.problems} == {1, 2}
    assert all("is missing" in p.reason for p in report.problems)


def test_retention_leaves_archived_blocks_to_the_archive(store, tmp_path):
    from modelward.registry import retention as registry_retention

    now = _ledger_with_history(store)
    archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    retired = registry_retention.retire_decisions(store, now=now + 400 * DAY)
    assert retired.blocks == [4]  # the stored block; the archived ones stay archived
    v = _full(store)
    assert v.ok and v.archived == 3 and v.retired == 1


def test_dry_run_changes_nothing(store, tmp_path):
    now = _ledger_with_history(store)
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now,
                             dry_run=True)
    assert (report.would_blocks, report.would_decisions) == (3, 150)
    assert _stored(store) == 200 and not (tmp_path / "a").exists()


def test_files_split_at_max_decisions_by_whole_blocks(store, tmp_path):
    now = _ledger_with_history(store, old_blocks=5, per_block=20)
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now,
                             max_decisions=45)
    assert [f.blocks for f in report.files] == [[1, 2], [3, 4], [5]]
    assert _full(store).ok


@pytest.mark.parametrize("stage", ["written", "checked", "recorded", "deleted"])
def test_a_crash_at_any_point_leaves_the_decisions_or_a_recorded_file(store, tmp_path, stage):
    now = _ledger_with_history(store)

    def crash(at):
        if at == stage:
            raise KeyboardInterrupt(at)

    with pytest.raises(KeyboardInterrupt):
        archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now, crash=crash)
    with store.read() as conn:
        assert archives.files(conn) == []  # record and delete are one transaction
    assert _stored(store) == 200 and _full(store).ok
    done = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    assert done.decisions == 150 and _full(store).ok  # the rerun writes the same file


def test_a_block_that_does_not_verify_is_not_archived(store, tmp_path):
    now = _ledger_with_history(store)
    with store.write(chain=False) as conn:
        conn.execute(decisions_table.update().where(decisions_table.c.block == 2)
                     .values(process="edited"))
    with pytest.raises(Exception, match="refusing to archive"):
        archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    assert _stored(store) == 200


def test_archived_decisions_still_keep_the_artifacts_they_name(store, tmp_path):
    now = _ledger_with_history(store)
    with store.read() as conn:
        before = ledger_retention.decision_references(conn, since=now - 400 * DAY)
    archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    with store.read() as conn:
        after = ledger_retention.decision_references(conn, since=now - 400 * DAY)
        rolled = ledger_retention.decision_references(conn, since=now - 400 * DAY,
                                                      rollups=True)
    assert after == before and rolled == before


@pytest.mark.parametrize("bad", ["", "   ", "ftp://host/x", "s3://", "s3://user@bucket/x",
                                 "s3://b/x?secret=1", "/tmp/a\nb", "x" * 2000])
def test_bad_destinations_are_refused(store, bad):
    with pytest.raises(ValidationError):
        archive.archive(store, older_than="90d", to=bad)


@pytest.mark.parametrize("bad", ["", "0d", "-5d", "ninety days", "90", "1e9d", None])
def test_bad_ages_are_refused(store, tmp_path, bad):
    with pytest.raises(ValidationError):
        archive.archive(store, older_than=bad, to=str(tmp_path / "a"))


def test_postgresql_drops_whole_months(store, tmp_path):
    if store.dialect != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    now = now_us()
    old = now - 200 * DAY
    decisions.append(store, _rows(30, old))
    decisions.append(store, _rows(30, now - DAY, 100))
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    assert partitions.name(*partitions.month_of(old)) in report.files[0].partitions
    assert _stored(store) == 30 and _full(store).ok


def _hex(b: int, i: int, what: str) -> str:
    return "sha256:" + hashlib.sha256(f"{what}{b}/{i}".encode()).hexdigest()


def test_bytes_per_decision(store, tmp_path):
    """The figure the docs quote: Parquet bytes per archived decision (zstd) for realistic
    rows (digests, alias, process, segments)."""
    now = now_us()
    for b in range(5):
        rows = [decisions.normalize({
            "at": now - 200 * DAY + b * 10_000 + i, "subject": f"user-{i % 977}",
            "model_digest": MODEL, "prompt_digest": PROMPT, "alias": "support-chat/prod",
            "input_digest": _hex(b, i, "in"), "output_digest": _hex(b, i, "out"),
            "process": f"pod-{i % 8}", "segments": {"tier": ["free", "pro"][i % 2]},
            "gate": {"threshold": 0.4, "candidates": 20, "passed": i % 20}})[0]
            for i in range(2000)]
        decisions.append(store, rows)
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    per = report.files[0].bytes / report.decisions
    assert 40 < per < 400, per
    with store.read() as conn:
        blocks = conn.execute(sa.select(sa.func.count()).select_from(archived_blocks)).scalar()
        assert blocks == 5
        assert conn.execute(sa.select(archives_table.c.decisions)).scalar() == 10_000


def test_a_signed_checkpoint_still_verifies_after_its_blocks_are_archived(store, tmp_path):
    """The checkpoint signed the decisions its blocks sealed: archiving them later leaves
    that count whole (archived blocks count as sealed), and a later hand deletion is caught."""
    from modelward.ledger import checkpoints
    from tests.ledger.test_heads import keys as make_keys

    keys = make_keys(tmp_path, sign=True)
    now = _ledger_with_history(store)
    with store.read() as conn:
        report = checkpoints.verify(conn, keys)
    with store.write() as conn:
        assert checkpoints.store(conn, report, keys) is not None
    archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    with store.read() as conn:
        again = checkpoints.verify(conn, keys)
        assert again.ok and again.checkpoint is not None, again.problems
        assert again.all_decisions == 200
    with store.write(chain=False) as conn:
        conn.execute(decisions_table.delete().where(decisions_table.c.block == 4))
    with store.read() as conn:
        assert not checkpoints.verify(conn, keys).ok
    assert "all 50 decisions of the block are gone" in _full(store).problems[0].reason


# ---- streaming and layout ----------------------------------------------------------------
def _month_start(year: int, month: int) -> int:
    import datetime as dt

    return int(dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000


def test_files_are_stored_hive_style_by_month_and_never_span_months(store, tmp_path):
    """Blocks of February, one straddling into March (it goes with February, the month of
    its earliest decision), and blocks of March: two files, one per month partition."""
    now = now_us()
    march = _month_start(2025, 3)
    decisions.append(store, _rows(20, march - 10 * DAY))
    decisions.append(store, _rows(20, march - 110, 100))  # 10 µs before March, into March
    decisions.append(store, _rows(20, march + DAY, 200))
    decisions.append(store, _rows(20, march + 2 * DAY, 300))
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now)
    assert [(f.month, f.blocks) for f in report.files] == [("2025-02", [1, 2]),
                                                            ("2025-03", [3, 4])]
    for f in report.files:
        hexd = f.digest[7:]
        path = tmp_path / "a" / "decisions" / f"month={f.month}" / f"{hexd}.parquet"
        assert path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == hexd
        assert f.to_dict()["file"].endswith(f"decisions/month={f.month}/{hexd}.parquet")
    assert not (tmp_path / "a" / "sha256").exists()
    assert _full(store).ok


def test_a_file_of_several_row_groups_streams_and_proves(store, tmp_path):
    now = _ledger_with_history(store, old_blocks=5, per_block=30)
    report = archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now,
                             row_group=60)
    (f,) = report.files
    assert f.row_groups == 3 and f.decisions == 150
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(tmp_path / "a" / f.key).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [60, 60, 30]
    assert _full(store).ok
    with store.read() as conn:
        last = archives.blocks_of(conn)[-1]
    got = audit.audit_decision(store, last.max_id, verify_payloads=False)
    assert got.decision.block == 5 and got.chain.verifies


def test_a_block_split_across_row_groups_still_proves(store, tmp_path):
    """A reader must not rely on a block sitting in one row group (another writer may
    have split it): rows are regrouped by block across row groups."""
    import io

    import pyarrow.parquet as pq

    now = _ledger_with_history(store, old_blocks=2, per_block=25)
    with store.read() as conn:
        rows = archives.rows_of(conn, [1, 2])
        sealed = archives.sealed(conn, [1, 2])
    table = pq.read_table(io.BytesIO(parquet_blocks.encode(rows)))
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=7)
    assert pq.ParquetFile(io.BytesIO(buf.getvalue())).num_row_groups == 8
    proof = parquet_blocks.check_file(io.BytesIO(buf.getvalue()), sealed)
    assert not proof.problems and set(proof.proven) == {1, 2} and proof.decisions == 50
    assert now


def test_a_file_corrupted_on_its_way_to_the_store_is_caught_by_the_read_back(
        store, tmp_path, monkeypatch):
    from modelward.ledger.blobs import BlobStore

    now = _ledger_with_history(store, old_blocks=4, per_block=30)
    real = BlobStore.put_file_at

    def corrupting(self, key, path, *, move=False):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x55  # a byte in the middle row group
        path.write_bytes(bytes(data))
        real(self, key, path, move=move)

    monkeypatch.setattr(BlobStore, "put_file_at", corrupting)
    with pytest.raises(Exception, match="read back does not prove"):
        archive.archive(store, older_than="90d", to=str(tmp_path / "a"), now=now,
                        row_group=30)
    assert _stored(store) == 150
    with store.read() as conn:
        assert archives.files(conn) == []


def test_max_file_decisions_is_validated(store, tmp_path):
    for bad in (0, -1, True, "10"):
        with pytest.raises(ValidationError):
            archive.archive(store, older_than="90d", to=str(tmp_path / "a"),
                            max_decisions=bad)


def test_archiving_memory_does_not_grow_with_the_file(store, tmp_path, request, monkeypatch):
    """Python's peak while archiving one file of 9,000 decisions stays near that of a
    file of 3,000 (row groups of 1,000): nothing holds the whole file's rows. (The bench
    measures the process's RSS: bench/archive.py.)"""
    import tracemalloc

    if "sqlite-memory" not in request.node.name:
        pytest.skip("measured once, on the in-memory ledger")
    monkeypatch.setattr(parquet_blocks, "READ_BATCH", 500)  # the batches scaled down with the file
    monkeypatch.setattr(archives, "SCAN_BATCH", 500)
    now = now_us()
    decisions.append(store, _rows(200, now - 300 * DAY))  # a warm-up file (imports)
    for b in range(24):
        age = 200 * DAY if b < 6 else 150 * DAY
        decisions.append(store, _rows(500, now - age + b * 1000, b * 500))
    archive.archive(store, older_than="250d", to=str(tmp_path / "w"), now=now)
    peaks = {}
    for label, older, n in (("small", "180d", 3000), ("large", "90d", 9000)):
        tracemalloc.start()
        try:
            report = archive.archive(store, older_than=older, to=str(tmp_path / label),
                                     now=now, row_group=1000)
            peaks[label] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [f.decisions for f in report.files] == [n]
    assert peaks["large"] < 1.5 * peaks["small"], peaks
