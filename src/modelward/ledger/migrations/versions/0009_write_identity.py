"""Who wrote it: the API token behind every governance record (alias moves, evidence opens,
promotion requests and reviews, artifact registrations).

Revision ID: 0009_write_identity
Revises: 0008_served_ids
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_write_identity"
down_revision = "0008_served_ids"
branch_labels = None
depends_on = None

TABLES = ("alias_events", "eval_opens", "promotion_requests", "promotion_reviews", "artifacts")


def upgrade() -> None:
    # plain ADD COLUMN (nullable: rows written before, and by the CLI, name no token):
    # no table rebuild on SQLite, instant on PostgreSQL
    for table in TABLES:
        op.add_column(table, sa.Column("token_id", sa.String(36)))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("token_id")
