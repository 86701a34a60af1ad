"""Attacks on archived history (``modelward archive``): an edited Parquet row, swapped
files, a deleted file, a forged archive record, the same blocks archived twice, decisions
deleted by hand with no archive record. Each is caught by ``verify --full`` (or refused),
naming the unprovable blocks; audit of an archived decision fails with it."""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from modelward.errors import ConflictError, ModelwardError
from modelward.ledger import archives, decisions, parquet_blocks
from modelward.ledger.schema import archived_blocks
from modelward.ledger.schema import archives as archives_table
from modelward.ledger.schema import decisions as decisions_table
from modelward.registry import archive, audit, parallel_verify
from modelward.timefmt import now_us

DAY = 86_400_000_000
MODEL = "sha256:" + "c" * 64


def _history(store, tmp_path):
    now = now_us()
    for b in range(4):
        decisions.append(store, [decisions.normalize(
            {"at": now - 300 * DAY + b * 1000 + i, "subject": f"s{i}", "model_digest": MODEL,
             "process": f"p{b}", "gate": {"threshold": 0.25 * b, "candidates": 9,
                                           "passed": i % 9}})[0] for i in range(40)])
    decisions.append(store, [decisions.normalize({"at": now - DAY, "subject": "new"})[0]])
    return archive.archive(store, older_than="90d", to=str(tmp_path / "arch"), now=now,
                           max_decisions=80).files


def _path(tmp_path, f):
    return tmp_path / "arch" / f.key


def _full(store):
    with store.read() as conn:
        return parallel_verify.verify(conn)


def _unprovable(report) -> set[int]:
    return {p.block for p in report.problems if "unprovable" in p.reason}


def _rewrite(data: bytes, edit) -> bytes:
    table = pq.read_table(io.BytesIO(data))
    cols = {n: table.column(n).to_pylist() for n in table.schema.names}
    edit(cols)
    out = io.BytesIO()
    pq.write_table(pa.table(cols, schema=table.schema), out, compression="zstd")
    return out.getvalue()


def test_an_archive_verifies_untouched(store, tmp_path):
    files = _history(store, tmp_path)
    assert [f.blocks for f in files] == [[1, 2], [3, 4]]
    assert _full(store).ok


def test_an_edited_parquet_row_in_place_is_caught(store, tmp_path):
    files = _history(store, tmp_path)
    path = _path(tmp_path, files[0])

    def edit(cols):
        cols["model_digest"][5] = "sha256:" + "d" * 64

    path.chmod(0o644)
    path.write_bytes(_rewrite(path.read_bytes(), edit))
    report = _full(store)
    assert not report.ok and _unprovable(report) == {1, 2}
    assert "altered" in report.problems[0].reason


def test_an_edited_row_stored_under_its_own_hash_and_record_repointed_is_caught(store, tmp_path):
    """The attacker re-uploads the edited file under its true sha256 and points the
    archive record at it: the record is chained, so the edit of the record is named."""
    files = _history(store, tmp_path)

    def edit(cols):
        cols["gate_threshold"][3] = 0.99

    data = _rewrite(_path(tmp_path, files[0]).read_bytes(), edit)
    forged = "sha256:" + hashlib.sha256(data).hexdigest()
    path = tmp_path / "arch" / parquet_blocks.file_key(files[0].month, forged)
    path.write_bytes(data)
    with store.write(chain=False) as conn:
        conn.execute(archives_table.update().where(archives_table.c.digest == files[0].digest)
                     .values(digest=forged))
    report = _full(store)
    assert not report.ok
    assert any(r["kind"] == "archives" and r["problem"] == "edited"
               for p in report.problems for r in p.records)
    assert _unprovable(report) == {1}  # the forged file does not prove block 1 (row 3)


def test_swapped_files_are_caught(store, tmp_path):
    files = _history(store, tmp_path)
    a, b = (_path(tmp_path, f) for f in files)
    da, db = a.read_bytes(), b.read_bytes()
    a.chmod(0o644)
    b.chmod(0o644)
    a.write_bytes(db)
    b.write_bytes(da)
    report = _full(store)
    assert _unprovable(report) == {1, 2, 3, 4}


def test_a_deleted_file_names_the_blocks_it_held(store, tmp_path):
    files = _history(store, tmp_path)
    _path(tmp_path, files[1]).unlink()
    report = _full(store)
    assert _unprovable(report) == {3, 4}
    assert all("missing" in p.reason for p in report.problems)
    with store.read() as conn:
        some = archives.blocks_of(conn, files[1].archive_id)[0].min_id
    got = audit.audit_decision(store, some, verify_payloads=False)
    assert not got.chain.verifies and "missing" in got.chain.problem


def test_a_forged_archive_record_hiding_deleted_decisions_is_caught(store, tmp_path):
    """Decisions deleted by hand, then an archive record inserted to excuse them."""
    now = now_us()
    for b in range(2):
        decisions.append(store, [decisions.normalize(
            {"at": now - 300 * DAY + b * 100 + i, "subject": f"s{i}"})[0] for i in range(10)])
    with store.write(chain=False) as conn:
        root = conn.exec_driver_sql("SELECT root FROM chain_blocks WHERE number = 1").scalar()
        conn.execute(decisions_table.delete().where(decisions_table.c.block == 1))
    report = _full(store)
    assert not report.ok and "gone" in report.problems[0].reason  # no record: still caught
    with store.write(chain=False) as conn:
        new = conn.execute(archives_table.insert().values(
            at=now, before_at=now, url="file:///nowhere", digest="sha256:" + "e" * 64,
            bytes=1, first_block=1, last_block=1, decisions=10, refs="{}")).inserted_primary_key[0]
        conn.execute(archived_blocks.insert().values(block=1, archive=new, root=root, count=10,
                                                     min_id="0", max_id="z"))
    report = _full(store)
    assert not report.ok
    kinds = {(r["kind"], r["problem"]) for p in report.problems for r in p.records}
    assert ("archives", "inserted") in kinds and ("archived_blocks", "inserted") in kinds
    assert 1 in _unprovable(report)


def test_archiving_the_same_blocks_twice_is_refused(store, tmp_path):
    files = _history(store, tmp_path)
    with store.read() as conn:
        blocks = conn.execute(sa.text("SELECT number, root, prev_root, count FROM chain_blocks "
                                      "WHERE number IN (1, 2) ORDER BY number")).all()
    with store.read() as conn:
        proof = parquet_blocks.check_file(_path(tmp_path, files[0]).open("rb"),
                                    archives.sealed(conn, [1, 2]))
    assert set(proof.proven) == {1, 2}
    with pytest.raises(ConflictError), store.write() as conn:
        archives.record_and_drop(conn, url=files[0].url, digest=files[0].digest,
                                 size=files[0].bytes, blocks=blocks, proof=proof,
                                 before=0, now=now_us())
    with pytest.raises((ModelwardError, sa.exc.IntegrityError)), \
            store.write(chain=False) as conn:  # the key refuses it
        conn.execute(archived_blocks.insert().values(block=1, archive=99, root="0" * 64,
                                                     count=40, min_id="0", max_id="z"))
    assert _full(store).ok


def test_a_file_holding_blocks_its_record_does_not_name(store, tmp_path):
    """File 2's bytes copied over file 1 plus one more block: caught by root and by name."""
    files = _history(store, tmp_path)
    first = _path(tmp_path, files[0])
    first.chmod(0o644)
    first.write_bytes(_path(tmp_path, files[1]).read_bytes())
    report = _full(store)
    assert {1, 2} <= _unprovable(report)


def test_an_edited_middle_row_group_names_only_its_blocks(store, tmp_path):
    """A file of three row groups (a block each): the middle one edited, the file stored
    under its own hash and the record repointed. The record edit is named, the middle
    block is unprovable, the blocks of the other row groups still prove."""
    now = now_us()
    for b in range(3):
        decisions.append(store, [decisions.normalize(
            {"at": now - 300 * DAY + b * 1000 + i, "subject": f"s{i}", "model_digest": MODEL})[0]
            for i in range(30)])
    (f,) = archive.archive(store, older_than="90d", to=str(tmp_path / "arch"), now=now,
                           row_group=30).files
    assert f.row_groups == 3
    table = pq.read_table(_path(tmp_path, f))
    cols = {n: table.column(n).to_pylist() for n in table.schema.names}
    cols["subject"][45] = "someone-else"  # block 2, in the middle row group
    out = io.BytesIO()
    pq.write_table(pa.table(cols, schema=table.schema), out, compression="zstd",
                   row_group_size=30)
    data = out.getvalue()
    assert pq.ParquetFile(io.BytesIO(data)).num_row_groups == 3
    forged = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "arch" / parquet_blocks.file_key(f.month, forged)).write_bytes(data)
    with store.write(chain=False) as conn:
        conn.execute(archives_table.update().values(digest=forged))
    report = _full(store)
    assert _unprovable(report) == {2}
    assert any(r["kind"] == "archives" and r["problem"] == "edited"
               for p in report.problems for r in p.records)


def test_bytes_flipped_in_the_middle_row_group_are_caught(store, tmp_path):
    files = _history(store, tmp_path)
    path = _path(tmp_path, files[0])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    report = _full(store)
    assert _unprovable(report) == {1, 2} and "altered" in report.problems[0].reason


def test_a_hostile_object_key_is_refused():
    from modelward.ledger.blobs import check_key

    for bad in ("", "/etc/passwd", "a/../b", "a//b", "a/b\\c", "a/b c", "./a"):
        with pytest.raises(ValueError):
            check_key(bad)
    assert check_key("decisions/month=2026-03/ab.parquet")
    with pytest.raises(ValueError):
        parquet_blocks.file_key("2026-03/../x", "sha256:" + "a" * 64)
