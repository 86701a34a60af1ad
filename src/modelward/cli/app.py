"""The ``modelward`` command: one Typer app, one module per command group."""

from __future__ import annotations

import sys

import typer

from ..errors import ModelwardError
from . import _common
from ._common import State

app = typer.Typer(
    name="modelward",
    help="Which checkpoint, prompt, embedder and data produced every output; "
    "guards that catch the silent changes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"modelward {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the log messages of "
                                 "modelward and the libraries it drives (Alembic's schema "
                                 "migrations, MLflow) on stderr."),
    home: str = typer.Option(None, "--home", help="Ledger home (default ./.modelward; env MODELWARD_HOME)."),
    database_url: str = typer.Option(None, "--database-url",
                                     help="SQLAlchemy URL (env MODELWARD_DATABASE_URL)."),
    config: str = typer.Option(None, "--config", help="The modelward.toml to read (env "
                               "MODELWARD_CONFIG; default: the one in the ledger's home, "
                               "else in the working directory)."),
) -> None:
    State.debug = debug
    ctx.call_on_close(_common.configure_logging(verbose))
    State.home = home
    State.database_url = database_url
    State.config = config


def _register_commands() -> None:
    from . import (
        aliases,
        artifacts,
        audit,
        blobs,
        chain,
        check,
        closure,
        contamination,
        db,
        decisions,
        evals,
        evalsets,
        experiments,
        feedback,
        fingerprints,
        integrations,
        login,
        people,
        promote,
        replay,
        retention,
        safety,
        serve,
        thresholds,
    )

    for module in (db, artifacts, aliases, decisions, chain, audit, retention, blobs, check, evals,
                   evalsets, feedback, contamination, closure, people, promote, safety,
                   replay, serve, experiments, fingerprints, thresholds, integrations, login):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the one place ModelwardError becomes exit code 2."""
    try:
        app(args=argv, prog_name="modelward", standalone_mode=True)
    except ModelwardError as exc:
        if State.debug:
            raise
        _common.fail(exc)
    except KeyboardInterrupt:
        _common.err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
