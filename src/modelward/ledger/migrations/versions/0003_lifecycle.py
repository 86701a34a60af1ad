"""Model lifecycle: people, alias owners and reviewers, eval opens, deprecated eval sets,
promotion requests and reviews, training closures.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

D = sa.String(71)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("team", sa.String(200)),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alias_roles",
        sa.Column("alias", sa.String(200), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("assigned_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "eval_opens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
    )
    op.create_index("ix_eval_opens_run", "eval_opens", ["run_id", "email"])
    op.create_table(
        "evalset_deprecations",
        sa.Column("digest", D, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(320)),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("digest", D, nullable=False),
        sa.Column("requester", sa.String(320), nullable=False),
        sa.Column("requested_at", sa.BigInteger, nullable=False),
        sa.Column("evidence_run_id", sa.String(36)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_promotion_requests_alias", "promotion_requests", ["alias"])
    op.create_table(
        "promotion_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("approver", sa.String(320), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failed_gates", sa.Text),
        sa.Column("override_reason", sa.Text),
        sa.Column("alias_event_id", sa.Integer),
        sa.Column("evidence_run_id", sa.String(36)),
    )
    op.create_index("ix_promotion_reviews_request", "promotion_reviews", ["request_id"])
    op.create_table(
        "closures",
        sa.Column("digest", D, primary_key=True),
        sa.Column("output_digest", D),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("base_digest", D),
        sa.Column("inputs", sa.Text),
        sa.Column("blobs", sa.Text),
        sa.Column("gaps", sa.Text),
    )
    op.create_index("ix_closures_output", "closures", ["output_digest"])


def downgrade() -> None:
    for table in ("closures", "promotion_reviews", "promotion_requests", "evalset_deprecations",
                  "eval_opens", "alias_roles", "people"):
        op.drop_table(table)
