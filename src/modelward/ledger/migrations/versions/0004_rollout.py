"""Rollout and retrieval: experiments and exposures, embedder fingerprints, threshold policies.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

D = sa.String(71)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("salt", sa.String(200), nullable=False),
        sa.Column("arms", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.Text),
        sa.Column("meta", sa.Text),
    )
    op.create_table(
        "exposures",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("arm", sa.String(100), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("model_digest", D),
        sa.Column("prompt_digest", D),
        sa.Column("embedder_digest", D),
        sa.Column("reranker_digest", D),
        sa.Column("vendor_model_id", sa.String(300)),
        sa.Column("fingerprint_epoch", sa.Integer),
        sa.Column("metric", sa.Float),
        sa.Column("extra", sa.Text),
    )
    op.create_index("ix_exposures_experiment_at", "exposures", ["experiment", "at"])
    op.create_index("ix_exposures_subject", "exposures", ["subject"])
    op.create_table(
        "fingerprints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("embedder_alias", sa.String(200), nullable=False),
        sa.Column("embedder_digest", D, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("probes_digest", D, nullable=False),
        sa.Column("vectors_digest", D, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
        sa.Column("dims", sa.Integer, nullable=False),
        sa.Column("noise_floor", sa.Float, nullable=False),
        sa.Column("vendor_model_id", sa.String(300)),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("baseline_id", sa.String(36)),
        sa.Column("verdict", sa.String(16)),
        sa.Column("magnitude", sa.Float),
        sa.Column("summary", sa.Text),
    )
    op.create_index("ix_fingerprints_alias_at", "fingerprints", ["embedder_alias", "at"])
    op.create_table(
        "threshold_policies",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("target", sa.Float, nullable=False),
        sa.Column("cut", sa.Float, nullable=False),
        sa.Column("previous_cut", sa.Float),
        sa.Column("reference_digest", D, nullable=False),
        sa.Column("substrate", sa.Text, nullable=False),
        sa.Column("actor", sa.String(320)),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    for table in ("threshold_policies", "fingerprints", "exposures", "experiments"):
        op.drop_table(table)
