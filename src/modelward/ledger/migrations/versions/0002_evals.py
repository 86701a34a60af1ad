"""Evaluation integrity: eval runs and per-item results, feedback, dataset lineage to feedback.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

D = sa.String(71)


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("evalset_digest", D, nullable=False),
        sa.Column("prompt_alias", sa.String(200)),
        sa.Column("prompt_digest", D),
        sa.Column("model_alias", sa.String(200)),
        sa.Column("model_digest", D),
        sa.Column("runner", sa.Text),
        sa.Column("harness_version", sa.String(32), nullable=False),
        sa.Column("scorers", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("n_items", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("meta", sa.Text),
    )
    op.create_index("ix_eval_runs_pair", "eval_runs", ["prompt_digest", "model_digest"])
    op.create_index("ix_eval_runs_started", "eval_runs", ["started_at"])
    op.create_index("ix_eval_runs_evalset", "eval_runs", ["evalset_digest"])
    op.create_table(
        "eval_results",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("item_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("rendered_digest", D),
        sa.Column("rendered_text", sa.Text),
        sa.Column("output_text", sa.Text),
        sa.Column("output_digest", D),
        sa.Column("scores", sa.Text),
        sa.Column("passed", sa.Boolean),
        sa.Column("latency_ms", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("rating", sa.Float),
        sa.Column("intent", sa.String(16), nullable=False),
        sa.Column("surface", sa.String(16), nullable=False),
        sa.Column("author_kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(320)),
        sa.Column("comment", sa.Text),
        sa.Column("correction", sa.Text),
        sa.Column("meta", sa.Text),
    )
    op.create_index("ix_feedback_decision", "feedback", ["decision_id"])
    op.create_index("ix_feedback_at", "feedback", ["at"])
    op.create_table(
        "dataset_feedback",
        sa.Column("dataset_digest", D, primary_key=True),
        sa.Column("feedback_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_dataset_feedback_feedback", "dataset_feedback", ["feedback_id"])


def downgrade() -> None:
    for table in ("dataset_feedback", "feedback", "eval_results", "eval_runs"):
        op.drop_table(table)
