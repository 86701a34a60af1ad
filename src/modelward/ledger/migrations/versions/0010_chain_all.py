"""Every fact in the chain: record leaves (chain_leaves), a record count per block, and the
rows already stored sealed into one block on upgrade.

Revision ID: 0010_chain_all
Revises: 0009_write_identity
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_chain_all"
down_revision = "0009_write_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chain_blocks", sa.Column("records", sa.Integer(), nullable=False,
                                            server_default="0"))
    op.create_table(
        "chain_leaves",
        sa.Column("block", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("pos", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("leaf", sa.String(64), nullable=False),
    )
    op.create_index("ix_chain_leaves_kind_key", "chain_leaves", ["kind", "key"])
    # The records written before this revision were never chained: seal them as they are
    # now into one block after the last one, so every later edit, deletion or insertion
    # shows. (Whatever was changed before the upgrade cannot be told apart any more.)
    from modelward.ledger.records import seal_existing

    seal_existing(op.get_bind())


def downgrade() -> None:
    # record blocks stay: they hold no decisions, and later decision blocks link through them
    op.drop_index("ix_chain_leaves_kind_key", table_name="chain_leaves")
    op.drop_table("chain_leaves")
    with op.batch_alter_table("chain_blocks") as batch:
        batch.drop_column("records")
