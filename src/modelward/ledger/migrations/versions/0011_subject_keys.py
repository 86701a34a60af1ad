"""Keyed text digests: one random key per subject, outside the chain (crypto-shredding).

Decisions recorded before this revision keep their plain ``sha256:`` digests (they are
chained and never change): erasing such a subject removes its text but cannot shred them.

Revision ID: 0011_subject_keys
Revises: 0010_chain_all
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_subject_keys"
down_revision = "0010_chain_all"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("subject", sa.String(300), primary_key=True),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    # the keyed digests already chained stay as they are: without their keys, their kept
    # texts can no longer be checked (audit says so)
    op.drop_table("subject_keys")
