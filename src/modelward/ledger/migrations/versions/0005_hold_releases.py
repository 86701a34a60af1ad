"""Hold releases: a release is a new ``holds`` row naming the hold it ends (append-only).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the row places a hold on ``digest``; N: the row releases hold N.
    op.add_column("holds", sa.Column("releases", sa.Integer))
    op.create_index("ix_holds_releases", "holds", ["releases"])


def downgrade() -> None:
    op.drop_index("ix_holds_releases", table_name="holds")
    op.drop_column("holds", "releases")
