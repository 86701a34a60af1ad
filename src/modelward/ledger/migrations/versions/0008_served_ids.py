"""Eval results: the model id and fingerprint the endpoint reported for each call.

Revision ID: 0008_served_ids
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_served_ids"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (nullable): no table rebuild on SQLite, instant on PostgreSQL
    op.add_column("eval_results", sa.Column("served_model_id", sa.String(300)))
    op.add_column("eval_results", sa.Column("served_fingerprint", sa.String(300)))


def downgrade() -> None:
    with op.batch_alter_table("eval_results") as batch:
        batch.drop_column("served_fingerprint")
        batch.drop_column("served_model_id")
