"""Shared pieces of every command: opening the ledger, printing, the one error path."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from ..errors import ModelwardError, ValidationError
from ..settings import Settings
from ..timefmt import parse_time

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of text.")


class State:
    debug = False
    home: str | None = None
    database_url: str | None = None
    config: str | None = None


def settings() -> Settings:
    return Settings({"home": State.home, "database_url": State.database_url},
                    config_path=State.config)


@contextmanager
def opened(*, create: bool = False):
    """The ledger store, schema checked; closed afterwards."""
    from ..ledger.engine import Store

    store = Store(settings())
    try:
        store.ensure_schema(create=create)
        yield store
    finally:
        store.dispose()


def configure_logging(verbose: bool):
    """Library log messages on stderr with ``--verbose``; otherwise only their warnings.
    Returns the function that undoes it when the command ends, so an in-process caller
    (a test, a notebook) keeps its own logging and environment.

    Without it, Alembic's INFO lines about each migration and MLflow's about its tracking
    store would read as the command's own output. The ledger quiets Alembic itself unless
    the ``alembic`` logger has a level of its own, which ``--verbose`` gives it."""
    undo = []
    if verbose:
        root, alembic = logging.getLogger(), logging.getLogger("alembic")
        before = (list(root.handlers), root.level, alembic.level)
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")
        alembic.setLevel(logging.INFO)

        def restore_logging() -> None:
            for handler in [h for h in root.handlers if h not in before[0]]:
                root.removeHandler(handler)
            root.setLevel(before[1])
            alembic.setLevel(before[2])

        undo.append(restore_logging)
    # MLflow configures its own logger when imported, from this variable (default INFO);
    # an explicit setting of the user's wins.
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO" if verbose else "WARNING"
        undo.append(lambda: os.environ.pop("MLFLOW_LOGGING_LEVEL", None))
    return lambda: [f() for f in undo]


def print_json(value) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def parse_at(value: str | None, option: str = "--at") -> int | None:
    if value is None:
        return None
    try:
        return parse_time(value, field=option)
    except ValidationError as exc:
        raise ValidationError(exc.message, hint=exc.hint) from None


def fail(exc: ModelwardError) -> None:
    """The one error path: a red line, a hint, exit 2."""
    # escaped: messages quote user input and TOML tables ("[foo]"), which are not markup
    err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False,
              emoji=False)
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(exc.hint)}", markup=True, highlight=False,
                  emoji=False)
    raise SystemExit(2)
