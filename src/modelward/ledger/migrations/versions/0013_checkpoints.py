"""Signed chain checkpoints (chain_checkpoints): verify recomputes only the blocks after
the newest valid one.

Revision ID: 0013_checkpoints
Revises: 0012_check_runs
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_checkpoints"
down_revision = "0012_check_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_checkpoints",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
    )
    op.create_index("ix_chain_checkpoints_block", "chain_checkpoints", ["block"])


def downgrade() -> None:
    op.drop_index("ix_chain_checkpoints_block", table_name="chain_checkpoints")
    op.drop_table("chain_checkpoints")
