"""PostgreSQL: decisions partitioned by month of ``at``; ``decision_ids`` keeps ids unique;
``retired_blocks`` (every backend) names the decision blocks retention dropped.

A partitioned table's primary key must include the partition key, so ``decisions`` is keyed
by ``(id, at)`` on PostgreSQL and ``decision_ids`` (id primary key) keeps a client-made id
unique across partitions. The existing rows are copied into the partitioned table (one
pass, in the upgrade's transaction) and their ids into ``decision_ids``. SQLite: the
table is created (unused there: its decisions keep ``id`` as their key) and nothing else
changes.

Revision ID: 0015_partitions
Revises: 0014_rollups
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_partitions"
down_revision = "0014_rollups"
branch_labels = None
depends_on = None

# (name, columns) of the decisions indexes, as ledger/schema.py declares them
_INDEXES = (("ix_decisions_at", "at"), ("ix_decisions_block_pos", "block, pos"),
            ("ix_decisions_subject", "subject"), ("ix_decisions_alias_at", "alias, at"),
            ("ix_decisions_model", "model_digest"))


def _swap(partitioned: bool) -> None:
    """Rebuild ``decisions`` as a partitioned (or again a plain) table with the same rows."""
    for ix, _cols in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {ix}")
    op.execute("ALTER TABLE decisions RENAME TO decisions_before_0015")
    op.execute("ALTER TABLE decisions_before_0015 DROP CONSTRAINT decisions_pkey")
    if partitioned:
        op.execute("CREATE TABLE decisions (LIKE decisions_before_0015 INCLUDING DEFAULTS, "
                   "CONSTRAINT decisions_pkey PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
        op.execute("CREATE TABLE decisions_pdefault PARTITION OF decisions DEFAULT")
        from modelward.ledger import partitions
        from modelward.timefmt import now_us

        bind = op.get_bind()
        first, = bind.exec_driver_sql("SELECT min(at) FROM decisions_before_0015").one()
        now = now_us()
        ahead = partitions.month_of(now)
        for _ in range(partitions.AHEAD):
            ahead = partitions._next(*ahead)
        start = partitions.month_of(now if first is None else min(first, now))
        for year, month in partitions.months(start, ahead):
            partitions.create(bind, year, month)
    else:
        op.execute("CREATE TABLE decisions (LIKE decisions_before_0015 INCLUDING DEFAULTS, "
                   "CONSTRAINT decisions_pkey PRIMARY KEY (id))")
    for ix, cols in _INDEXES:
        op.execute(f"CREATE INDEX {ix} ON decisions ({cols})")
    op.execute("INSERT INTO decisions SELECT * FROM decisions_before_0015")
    op.execute("DROP TABLE decisions_before_0015")


def upgrade() -> None:
    op.create_table("decision_ids", sa.Column("id", sa.String(36), primary_key=True))
    op.create_table(
        "retired_blocks",
        sa.Column("block", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("before_at", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    _swap(partitioned=True)
    op.execute("INSERT INTO decision_ids (id) SELECT id FROM decisions")


def downgrade() -> None:
    op.drop_table("retired_blocks")
    op.drop_table("decision_ids")
    if op.get_bind().dialect.name != "postgresql":
        return
    _swap(partitioned=False)
