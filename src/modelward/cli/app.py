"""The ``modelward`` command: one Typer app, one module per command group."""

from __future__ import annotations

import importlib
import sys

import typer
import typer.main
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from ..errors import ModelwardError
from ._group import typer_app
from ._state import State

# Every top-level command: (its module in modelward.cli, the one-line help `--help` lists).
# Modules are imported only when their command runs, so the CLI starts fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("db", "Create the ledger (database schema and blob store), or bring it up to date."),
    "db": ("db", "The ledger database schema (Alembic migrations)."),
    "register": ("artifacts", "Register an artifact by content; prints its sha256: digest."),
    "artifacts": ("artifacts", "List registered artifacts."),
    "alias": ("aliases", "Mutable names with append-only, time-indexed history."),
    "decisions": ("decisions", "Production decisions and their record."),
    "erase": ("decisions", "Erase the raw input/output text kept for a subject and destroy "
              "the key of its chained digests; the chained record stays intact."),
    "verify": ("chain", "Recompute the chain from the newest signed checkpoint (all of it with "
               "--full or without a key); exit 0 when intact, 1 naming the first broken block."),
    "chain": ("chain", "The tamper-evident decision log."),
    "audit": ("audit", "Which artifacts produced a decision, whether that matches the alias at "
              "that moment, whether their payloads are still retained, and whether the record "
              "verifies."),
    "retention": ("retention", "Every artifact: the decisions inside the retention window that "
                  "name it, aliases, holds, lineage, and its payload status."),
    "gc": ("retention", "Delete the payloads of artifacts nothing keeps (no decision inside the "
           "retention window, no alias, no hold, no kept descendant, older than gc_grace)."),
    "hold": ("retention", "Protect an artifact's payload (and its lineage) from gc until "
             "released; or release a hold with --release ID."),
    "holds": ("retention", "Holds in force (with --all, released ones too), oldest first."),
    "archive": ("archive", "Move sealed decision blocks older than --older-than to Parquet "
                "files on a blob store (checked, then recorded in the chain with their sha256 "
                "and block roots), then drop them from the database;..."),
    "blobs": ("blobs", "The content-addressed blob store (local directory or object store)."),
    "fetch": ("blobs", "Write a verified copy of what ALIAS resolves to into DIR (a file, or a "
              "directory for a directory artifact); a payload whose bytes no longer match its "
              "digest is refused."),
    "check": ("check", "Run the guards over the ledger: exit 0 clean, 1 when a finding reaches "
              "--fail-on, 2 on a usage, configuration or storage error."),
    "alerts": ("alerts", "Notifications of findings opened and resolved ([alerts] of "
               "modelward.toml)."),
    "findings": ("findings", "Findings opened, acknowledged and resolved by the recorded guard "
                 "runs; acknowledge or snooze one."),
    "explain": ("check", "Print a guard's documentation: what it checks, why, an example, the "
                "fix, its options."),
    "guards": ("check", "List every guard code: name, default severity and status (active or "
               "planned)."),
    "eval": ("evals", "Run evals that record exactly what they scored."),
    "evalset": ("evalsets", "Eval sets against production traffic: compare, rebuild; "
                "deprecate."),
    "feedback": ("feedback", "Feedback on decisions: rating, intent, surface, author kind."),
    "curate": ("feedback", "Build a dataset from the feedback a policy admits; register it with "
               "its lineage (feedback ids, policy) and print what was excluded and why."),
    "contamination": ("contamination", "Find eval items in few-shot pools, prompts, corpora or "
                      "training data: exact copies (after normalising case, punctuation and "
                      "Unicode), near-duplicates, copies inside longer documents, and shared..."),
    "closure": ("closure", "Record how a model was trained; rebuild it and compare."),
    "people": ("people", "The roster: who is on the team, who left."),
    "promote": ("promote", "Promote a digest to an alias through gates: a reviewer of record "
                "who opened fresh evidence on exactly that digest."),
    "safety": ("safety", "Safety regression of fine-tunes against their base."),
    "replay": ("replay", "Re-run a decision with its exact retained model, prompt and stored "
               "input."),
    "serve": ("serve", "Serve the JSON API (/api/v1), OTLP ingest (/v1/traces) and the "
              "dashboard."),
    "token": ("serve", "API tokens (stored only as hashes)."),
    "experiment": ("experiments", "Experiments: salted (balance-searched) assignment, exposures, "
                   "and the checks on them."),
    "fingerprint": ("fingerprints", "Embedder fingerprints: sentinel probes, noise floors, "
                    "substrate epochs."),
    "threshold": ("thresholds", "Retrieval-gate cuts as target pass rates, recalibrated on "
                  "substrate change."),
    "import": ("integrations", "Import artifacts and aliases from other systems."),
    "watch": ("integrations", "Run the guards as the ledger changes and send the alerts of "
              "what opened or resolved (no sub-command); or watch another system and record "
              "what changes (mlflow)."),
    "login-url": ("login", "Print a one-time dashboard log-in URL (single use; exchanged for a "
                  "12-hour session)."),
}

def _load(name: str) -> click.Command:
    """Import the module of top-level command ``name`` and build its click command."""
    module = importlib.import_module(f"{__package__}.{COMMANDS[name][0]}")
    holder = typer_app()
    module.register(holder)
    command = getattr(typer.main.get_group(holder), "commands", {}).get(name)
    if command is None:  # the table names a command its module does not register
        raise RuntimeError(f"modelward.cli.{COMMANDS[name][0]} does not register {name!r}")
    return command


class LazyGroup(TyperGroup):
    """The root group: a command's module is imported when that command runs (or its own
    help is asked for), not for every invocation. ``modelward --help`` lists the table's
    one-line help without importing a command module (tests/cli/test_startup.py keeps the
    table equal to what the modules register)."""

    _listing = False

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            if self._listing:  # the help listing: name and one-line help suffice
                return TyperCommand(cmd_name, short_help=COMMANDS[cmd_name][1])
            self.commands[cmd_name] = _load(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer_app(
    cls=LazyGroup,
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
    from . import _common  # every command imports it anyway; --help and --version do not

    State.debug = debug
    ctx.call_on_close(_common.configure_logging(verbose))
    State.home = home
    State.database_url = database_url
    State.config = config


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the one place ModelwardError becomes exit code 2."""
    try:
        app(args=argv, prog_name="modelward", standalone_mode=True)
    except ModelwardError as exc:
        if State.debug:
            raise
        from . import _common

        _common.fail(exc)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
