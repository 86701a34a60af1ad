"""The ledger: artifacts, lineage, alias history, decisions and their payloads, chain, holds.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

D = sa.String(71)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("digest", D, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100)),
        sa.Column("owner", sa.String(320)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.String(8), nullable=False),
        sa.Column("is_directory", sa.Boolean, nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("hosted_id", sa.String(300)),
        sa.Column("retires_at", sa.BigInteger),
        sa.Column("source_path", sa.Text),
        sa.Column("payload_deleted_at", sa.BigInteger),
        sa.Column("meta", sa.Text),
    )
    op.create_index("ix_artifacts_kind", "artifacts", ["kind"])
    op.create_index("ix_artifacts_name", "artifacts", ["name"])
    op.create_table(
        "artifact_parents",
        sa.Column("child", D, primary_key=True),
        sa.Column("parent", D, primary_key=True),
        sa.Column("relation", sa.String(32), nullable=False),
    )
    op.create_index("ix_artifact_parents_parent", "artifact_parents", ["parent"])
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("digest", D, nullable=False),
        sa.Column("previous_digest", D),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(320)),
        sa.Column("reason", sa.Text),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text),
    )
    op.create_index("ix_alias_events_alias_at", "alias_events", ["alias", "at", "id"])
    op.create_index("ix_alias_events_digest", "alias_events", ["digest"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("alias", sa.String(200)),
        sa.Column("model_digest", D),
        sa.Column("prompt_digest", D),
        sa.Column("embedder_digest", D),
        sa.Column("reranker_digest", D),
        sa.Column("config_digest", D),
        sa.Column("vendor_model_id", sa.String(300)),
        sa.Column("vendor_fingerprint", sa.String(300)),
        sa.Column("subject", sa.String(300)),
        sa.Column("input_digest", D),
        sa.Column("output_digest", D),
        sa.Column("segments", sa.Text),
        sa.Column("gate_threshold", sa.Float),
        sa.Column("gate_candidates", sa.Integer),
        sa.Column("gate_passed", sa.Integer),
        sa.Column("process", sa.String(300)),
        sa.Column("extra", sa.Text),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("pos", sa.Integer, nullable=False),
    )
    op.create_index("ix_decisions_at", "decisions", ["at"])
    op.create_index("ix_decisions_block_pos", "decisions", ["block", "pos"])
    op.create_index("ix_decisions_subject", "decisions", ["subject"])
    op.create_index("ix_decisions_alias_at", "decisions", ["alias", "at"])
    op.create_index("ix_decisions_model", "decisions", ["model_digest"])
    op.create_table(
        "decision_payloads",
        sa.Column("decision_id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(300)),
        sa.Column("input_text", sa.Text),
        sa.Column("output_text", sa.Text),
        sa.Column("erased_at", sa.BigInteger),
    )
    op.create_index("ix_decision_payloads_subject", "decision_payloads", ["subject"])
    op.create_table(
        "chain_blocks",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("prev_root", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("sealed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", D, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(320)),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_holds_digest", "holds", ["digest"])


def downgrade() -> None:
    for table in ("holds", "chain_blocks", "decision_payloads", "decisions", "alias_events",
                  "artifact_parents", "artifacts"):
        op.drop_table(table)
