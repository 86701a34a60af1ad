"""Shared pieces of every command: opening the ledger, printing, the one error path."""

from __future__ import annotations

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


def _git_email() -> str | None:
    """``git config user.email`` where the command runs (None without git or a value)."""
    import subprocess

    try:
        done = subprocess.run(["git", "config", "user.email"], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def identity(given: str | None, option: str = "--actor") -> str:
    """Who runs this command, as an e-mail: ``given`` (the option), else ``actor`` from
    MODELWARD_ACTOR or modelward.toml, else git's ``user.email``. With none, the command is
    refused: alias moves and approvals always name a person."""
    from ..ledger.people import check_email

    if given:
        return check_email(given, option)
    configured = settings().actor
    if configured:
        return check_email(configured, "actor (MODELWARD_ACTOR or modelward.toml)")
    git = _git_email()
    if git:
        return check_email(git, "git config user.email")
    raise ValidationError(
        f"no identity: {option} was not given, and neither MODELWARD_ACTOR, `actor` in "
        "modelward.toml nor `git config user.email` names you", field=option,
        hint=f"pass {option} you@example.com, or `export MODELWARD_ACTOR=you@example.com`, "
             "or `git config --global user.email you@example.com`")


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
