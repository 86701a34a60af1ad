"""Finding acknowledgements: who acknowledged or snoozed which finding, why and until when
(chained records).

Revision ID: 0017_finding_acks
Revises: 0016_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_finding_acks"
down_revision = "0016_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "finding_acks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("finding_key", sa.String(64), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("until", sa.BigInteger()),
        sa.Column("revoked_at", sa.BigInteger()),
        sa.Column("revoked_by", sa.String(320)),
    )
    op.create_index("ix_finding_acks_key", "finding_acks", ["finding_key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_finding_acks_key", "finding_acks")
    op.drop_table("finding_acks")
