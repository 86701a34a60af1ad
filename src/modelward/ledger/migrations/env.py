"""Alembic environment: modelward passes the open connection in ``config.attributes``."""

from alembic import context

from modelward.ledger.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - modelward always passes one
    raise RuntimeError("run migrations through `modelward db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
