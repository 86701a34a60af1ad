"""Shared pieces of every command: opening the ledger, printing, the one error path."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from ..errors import ModelwardError, ValidationError
from ..settings import Settings
from ..timefmt import parse_time
from ._state import State  # re-exported: commands read _common.State

__all__ = ["State"]  # and the helpers below

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of text.")




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


def fail(exc: ModelwardError, code: int = 2) -> None:
    """The one error path: a red line, a hint, exit 2 (``code``: 1 where the input was
    well-formed but disagrees with the ledger)."""
    # escaped: messages quote user input and TOML tables ("[foo]"), which are not markup
    err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False,
              emoji=False)
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(exc.hint)}", markup=True, highlight=False,
                  emoji=False)
    raise SystemExit(code)


def read_input(file: Path, option: str = "FILE") -> bytes:
    """The bytes of an input file; a missing, unreadable or non-regular file is one clear
    error (exit 2), never a traceback."""
    if file.is_dir():
        raise ValidationError(f"{file} is a directory, not a file", field=option)
    if not file.exists():
        raise ValidationError(f"{file} does not exist", field=option)
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {file}: {exc.strerror or exc}", field=option) \
            from None
