"""Shared pieces of every command: opening the ledger, printing, the one error path."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from ..display import inert, inert_json
from ..errors import IdConflictError, ModelwardError, ValidationError
from ..settings import Settings
from ..timefmt import parse_time, parse_when
from ._state import State  # re-exported: commands read _common.State

__all__ = ["State"]  # and the helpers below


class InertConsole(Console):
    """The CLI's console: no markup, highlighting or emoji codes, and every string printed
    made inert (:func:`modelward.display.inert`), so nothing read from the ledger can move
    the cursor, colour the screen, open a hyperlink or reorder a line. Renderers that put
    one ledger value per line also pass each line through ``inert`` (newlines escaped)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(markup=False, highlight=False, emoji=False, soft_wrap=True, **kwargs)

    def print(self, *objects, **kwargs) -> None:
        super().print(*(inert(o, lines=True) if isinstance(o, str) else o for o in objects),
                      **kwargs)


out = InertConsole()
err = InertConsole(stderr=True)

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
    write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n", json=True)


def write(text: str, *, json: bool = False) -> None:
    """Write already formatted text (a report, JSON) to stdout, inert on a terminal."""
    sys.stdout.write(inert_json(text) if json else inert(text, lines=True))
    sys.stdout.flush()


def parse_at(value: str | None, option: str = "--at", *, now: int | None = None) -> int | None:
    """Every ``--at``, ``--since`` and ``--until``: an ISO 8601 time or a duration back
    from now (``7d``), through :func:`modelward.timefmt.parse_when`."""
    try:
        return parse_when(value, now=now, field=option)
    except ValidationError as exc:
        raise ValidationError(exc.message, hint=exc.hint) from None


def parse_timestamp(value: str | None, option: str) -> int | None:
    """An option that names a moment by its date only (``--retires``): ISO 8601, no
    duration."""
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
    err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True)
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(exc.hint)}", markup=True)
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


@contextmanager
def importing(as_json: bool, *, prefix: str = ""):
    """One way every all-or-nothing file import reports failure: a file that disagrees with
    the ledger (an id recorded with other content) exits 1, a bad file exits 2 with every bad
    line under the one error line; with ``--json`` the error object instead. ``prefix`` names
    the file in each message."""
    try:
        yield
    except IdConflictError as exc:  # well-formed, but disagrees with the ledger
        exc.message = prefix + exc.message
        if as_json:
            print_json({"ok": False, "error": exc.to_dict()})
            raise SystemExit(1) from None
        fail(exc, code=1)
    except ValidationError as exc:
        for p in [exc, *exc.problems]:
            p.message = prefix + p.message
        if as_json:
            print_json({"ok": False, "error": exc.to_dict()})
            raise SystemExit(2) from None
        exc.message += "".join(f"\n  {p.message}" for p in exc.problems[1:])
        raise
