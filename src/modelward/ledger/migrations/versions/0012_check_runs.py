"""Guard runs: each run of the guards (check_runs), the findings it showed
(check_findings) and the lifecycle of every finding (findings: opened, last seen,
resolved). Derived facts, so not chained.

Revision ID: 0012_check_runs
Revises: 0011_subject_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_check_runs"
down_revision = "0011_subject_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger()),
        sa.Column("now", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.BigInteger()),
        sa.Column("guards", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text()),
        sa.Column("seconds", sa.Float()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_check_runs_status_started", "check_runs", ["status", "started_at"])
    op.create_table(
        "check_findings",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fix", sa.Text()),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("decisions", sa.BigInteger()),
        sa.Column("aliases", sa.Integer()),
        sa.Column("first_seen", sa.BigInteger()),
        sa.Column("last_seen", sa.BigInteger()),
    )
    op.create_index("ix_check_findings_key", "check_findings", ["key"])
    op.create_table(
        "findings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("opened_run", sa.String(36), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("last_run", sa.String(36), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("resolved_run", sa.String(36)),
        sa.Column("resolved_at", sa.BigInteger()),
    )
    op.create_index("ix_findings_code_resolved", "findings", ["code", "resolved_at"])


def downgrade() -> None:
    op.drop_index("ix_findings_code_resolved", table_name="findings")
    op.drop_table("findings")
    op.drop_index("ix_check_findings_key", table_name="check_findings")
    op.drop_table("check_findings")
    op.drop_index("ix_check_runs_status_started", table_name="check_runs")
    op.drop_table("check_runs")
