"""Per-block rollups of the decisions (decision_rollups), back-filled for every sealed block.

Revision ID: 0014_rollups
Revises: 0013_checkpoints
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_rollups"
down_revision = "0013_checkpoints"
branch_labels = None
depends_on = None

DIGEST = sa.String(71)


def upgrade() -> None:
    op.create_table(
        "decision_rollups",
        sa.Column("block", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("pos", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("alias", sa.String(200)),
        sa.Column("model_digest", DIGEST),
        sa.Column("prompt_digest", DIGEST),
        sa.Column("embedder_digest", DIGEST),
        sa.Column("reranker_digest", DIGEST),
        sa.Column("config_digest", DIGEST),
        sa.Column("process", sa.String(300)),
        sa.Column("vendor_model_id", sa.String(300)),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.Column("min_id", sa.String(36), nullable=False),
    )
    op.create_index("ix_decision_rollups_first_at", "decision_rollups", ["first_at"])
    # every block sealed before this revision gets its rollups from its decisions (one
    # GROUP BY pass); guards would read its decisions directly otherwise, so nothing is lost
    from modelward.ledger.rollups import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_decision_rollups_first_at", table_name="decision_rollups")
    op.drop_table("decision_rollups")
