"""Retrieval-gate sums (what MW502 reads) and the vendor fingerprint range (MW104) in the
per-block rollups, back-filled for every sealed block.

Revision ID: 0018_rollup_gates
Revises: 0017_finding_acks
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_rollup_gates"
down_revision = "0017_finding_acks"
branch_labels = None
depends_on = None

COLUMNS = (("gated", sa.Integer()), ("gate_first_at", sa.BigInteger()),
           ("gate_passed", sa.BigInteger()), ("gate_candidates", sa.BigInteger()),
           ("gate_xx", sa.BigInteger()), ("gate_xn", sa.BigInteger()),
           ("gate_nn", sa.BigInteger()), ("cut_last_at", sa.BigInteger()),
           ("fp_min", sa.String(300)), ("fp_max", sa.String(300)))


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("decision_rollups", sa.Column(name, type_))
    # every block's rollups again, now with their gate sums (one GROUP BY pass); a row left
    # without them would only send MW502 to that block's decisions
    from modelward.ledger.rollups import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("decision_rollups") as batch:
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)
