"""``modelward init`` and ``modelward db upgrade|revision``."""

from __future__ import annotations

import typer

from ._common import JSON_OPTION, out, print_json, settings
from ._group import typer_app

db_app = typer_app(help="The ledger database schema (Alembic migrations).", no_args_is_help=True)


def _upgrade(as_json: bool, verb: str) -> None:
    from ..ledger.engine import Store

    s = settings()
    store = Store(s)
    try:
        before, after = store.upgrade()
        if not store.blobs.remote:  # an object store's prefix needs no creating
            s.blob_path.mkdir(parents=True, exist_ok=True)
    finally:
        store.dispose()
    if as_json:
        print_json({"database": store.display_url, "blobs": s.blob_location,
                    "revision_before": before, "revision": after})
    elif before == after:
        out.print(f"ledger at {store.display_url} is up to date (revision {after})")
    else:
        out.print(f"{verb} ledger at {store.display_url} (revision {before or 'none'} -> {after})")
        out.print(f"blobs in {s.blob_location}")


def init(as_json: bool = JSON_OPTION) -> None:
    """Create the ledger (database schema and blob store), or bring it up to date."""
    _upgrade(as_json, "initialised")


@db_app.command("upgrade")
def upgrade(as_json: bool = JSON_OPTION) -> None:
    """Run every pending schema migration."""
    _upgrade(as_json, "upgraded")


@db_app.command("revision")
def revision(as_json: bool = JSON_OPTION) -> None:
    """Show the schema revision of the ledger and the one this modelward needs."""
    from ..ledger.engine import Store

    store = Store(settings())
    try:
        current, head = store.revision(), store.head_revision()
    finally:
        store.dispose()
    if as_json:
        print_json({"revision": current, "head": head, "up_to_date": current == head})
    else:
        out.print(f"revision {current or 'none'} (this modelward needs {head})")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(db_app, name="db")
