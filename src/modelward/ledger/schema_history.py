"""The records of decision blocks that left the database (SQLAlchemy Core, on
:data:`.schema.metadata`): blocks retired by retention and blocks archived to Parquet, both
chained so verify tells them from deleted ones. Import them from :mod:`.schema`, which
re-exports them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from .schema import DIGEST, metadata

# Decision blocks retired by retention (ledger/retirement.py): their decisions were dropped
# (a PostgreSQL partition or rows) once every one was past the retention window and none
# named a held artifact. Chained, so verify can tell a retired block from a deleted one.
retired_blocks = Table(
    "retired_blocks",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("before_at", BigInteger, nullable=False),
    Column("method", String(16), nullable=False),  # "partition" | "rows"
)

# Decision blocks moved to Parquet files on a blob store (ledger/archives.py): one row per
# file (its store URL and sha256) and one per block it holds (the block's sealed root and the
# range of its decision ids, how audit finds an archived decision). Both chained.
archives = Table(
    "archives",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("before_at", BigInteger, nullable=False),
    Column("url", String(1000), nullable=False),  # the blob store; the file is
    # url/decisions/month=YYYY-MM/<sha256>.parquet
    Column("digest", DIGEST, nullable=False),  # sha256 of the Parquet file's bytes
    Column("bytes", BigInteger, nullable=False),
    Column("first_block", BigInteger, nullable=False),
    Column("last_block", BigInteger, nullable=False),
    Column("decisions", BigInteger, nullable=False),
    Column("refs", Text, nullable=False),  # JSON: digest -> [decisions, last at, first at]
)

archived_blocks = Table(
    "archived_blocks",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("archive", Integer, nullable=False),
    Column("root", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("min_id", String(36), nullable=False),
    Column("max_id", String(36), nullable=False),
    Index("ix_archived_blocks_ids", "min_id", "max_id"),
)
