"""Bytes per decision: in the database (SQLite, PostgreSQL) and archived as Parquet.

Builds a ledger of ``--decisions`` realistic decisions (random UUIDv7 ids, a few models
and prompts, an embedder and vendor id on half, keyed input/output digests, a subject
among 50,000, one of 16 serving processes, segments, retrieval-gate figures) 200 days old
in blocks of 2,000, measures what the decisions take in the database (SQLite: the
``decisions`` table and its indexes from ``dbstat``; PostgreSQL:
``pg_total_relation_size`` of the table and its partitions, after ``VACUUM``), archives
them with ``modelward archive --older-than 90d`` to a local directory and reports the
Parquet bytes per decision, the archive's throughput and the process's peak RSS
(``ru_maxrss``) after building and after archiving. One JSON line per backend.

    nice -n 10 .venv/bin/python bench/archive.py --decisions 200000 \\
        [--max-file-decisions N] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import modelward
from modelward.ledger import decisions
from modelward.registry import archive
from modelward.timefmt import now_us

DAY = 86_400_000_000


def uuid7(at_us: int) -> str:
    """A UUIDv7 of the decision's millisecond, random below it (as the recorder makes)."""
    import uuid_utils

    return str(uuid_utils.uuid7(nanoseconds=at_us * 1000))


def _digest(rng: random.Random) -> str:
    return "sha256:" + hashlib.sha256(rng.randbytes(16)).hexdigest()


def build(store, n: int, now: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    models = [_digest(rng) for _ in range(4)]
    prompts = [_digest(rng) for _ in range(12)]
    embedder = _digest(rng)
    start = now - 200 * DAY
    for b in range(0, n, 2000):
        rows = []
        for i in range(b, min(n, b + 2000)):
            at = start + i * 1000
            d = {"id": str(uuid7(at)),
                 "at": at, "alias": "support-chat/prod", "model_digest": rng.choice(models),
                 "prompt_digest": rng.choice(prompts), "subject": f"user-{rng.randrange(50_000)}",
                 "input_digest": _digest(rng), "output_digest": _digest(rng),
                 "process": f"pod-{rng.randrange(16)}",
                 "segments": {"tier": rng.choice(["free", "pro", "team"]),
                              "region": rng.choice(["eu", "us", "apac"])},
                 "gate": {"threshold": 0.4, "candidates": 20, "passed": rng.randrange(21)}}
            if i % 2:
                d.update(embedder_digest=embedder, vendor_model_id="gpt-4o-2024-08-06")
            rows.append(decisions.normalize(d)[0])
        decisions.append(store, rows)


def db_bytes(store) -> int:
    with store.read() as conn:
        if store.dialect == "sqlite":
            return int(conn.exec_driver_sql(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'decisions' OR name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name = 'decisions')").scalar())
        return int(conn.exec_driver_sql(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.oid = "
            "'decisions'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE "
            "inhparent = 'decisions'::regclass)").scalar())


def run(url: str | None, n: int, tmp: Path, name: str, max_file: int) -> dict:
    led = modelward.open(str(tmp / name), database_url=url)
    store = led.store
    try:
        now = now_us()
        build(store, n, now)
        if store.dialect == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE decisions")
        before = db_bytes(store)
        built_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        report = archive.archive(store, older_than="90d", to=str(tmp / f"{name}-archive"),
                                 now=now, max_decisions=max_file)
        seconds = time.perf_counter() - t0
        parquet = sum(f.bytes for f in report.files)
        return {"backend": store.dialect, "decisions": report.decisions,
                "db_bytes_per_decision": round(before / n, 1),
                "parquet_bytes_per_decision": round(parquet / report.decisions, 1),
                "ratio": round(before / parquet, 2), "files": len(report.files),
                "row_groups": sum(f.row_groups for f in report.files),
                "archive_decisions_per_s": round(report.decisions / seconds),
                "peak_rss_mib_after_build": round(built_rss / 1024),
                "peak_rss_mib_after_archive": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    finally:
        led.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=200_000)
    ap.add_argument("--postgres", default=None)
    ap.add_argument("--max-file-decisions", type=int, default=archive.MAX_FILE_DECISIONS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(f"sqlite:///{tmp}/ledger.db", args.decisions, Path(tmp), "sqlite",
                             args.max_file_decisions)))
        if args.postgres:  # in a schema of its own, dropped afterwards
            import sqlalchemy as sa

            schema = f"mw_archive_bench_{os.getpid()}"
            admin = sa.create_engine(args.postgres)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            url = sa.make_url(args.postgres).update_query_dict(
                {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
            try:
                print(json.dumps(run(url, args.decisions, Path(tmp), "pg", args.max_file_decisions)))
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()


if __name__ == "__main__":
    main()
