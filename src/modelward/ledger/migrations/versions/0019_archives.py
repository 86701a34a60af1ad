"""Archives: decision blocks moved to Parquet files on a blob store (chained records).

Revision ID: 0019_archives
Revises: 0017_finding_acks
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_archives"
down_revision = "0018_rollup_gates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archives",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("before_at", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("decisions", sa.BigInteger(), nullable=False),
        sa.Column("refs", sa.Text(), nullable=False),
    )
    op.create_table(
        "archived_blocks",
        sa.Column("block", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("archive", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_id", sa.String(36), nullable=False),
        sa.Column("max_id", sa.String(36), nullable=False),
    )
    op.create_index("ix_archived_blocks_ids", "archived_blocks", ["min_id", "max_id"])


def downgrade() -> None:
    op.drop_index("ix_archived_blocks_ids", "archived_blocks")
    op.drop_table("archived_blocks")
    op.drop_table("archives")
