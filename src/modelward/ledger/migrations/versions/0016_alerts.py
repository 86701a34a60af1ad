"""Alert deliveries: the outbox of notifications sent when a guard run opens or resolves a
finding (operational state, not chained).

Revision ID: 0016_alerts
Revises: 0015_partitions
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_alerts"
down_revision = "0015_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("finding_key", sa.String(64), nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger()),
        sa.Column("last_error", sa.Text()),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.UniqueConstraint("channel", "finding_key", "transition", "run_id",
                            name="uq_alert_deliveries_once"),
    )
    op.create_index("ix_alert_deliveries_status_next", "alert_deliveries",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_status_next", "alert_deliveries")
    op.drop_table("alert_deliveries")
