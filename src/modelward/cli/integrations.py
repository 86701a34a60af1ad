"""``modelward import mlflow`` and ``modelward watch mlflow``."""

from __future__ import annotations

import sys

import orjson
import typer

from ..timefmt import parse_duration
from ._common import JSON_OPTION, err, opened, out, print_json

import_app = typer.Typer(help="Import artifacts and aliases from other systems.",
                         no_args_is_help=True)
watch_app = typer.Typer(help="Watch other systems and record what changes.",
                        no_args_is_help=True)

TRACKING = typer.Option(..., "--tracking-uri", help="MLflow tracking URI (e.g. sqlite:///mlflow.db, "
                        "http://mlflow:5000).")
REGISTRY = typer.Option(None, "--registry-uri", help="MLflow registry URI (default: the "
                        "tracking URI).")


def _line(change) -> str:
    c = change
    if c.action == "registered":
        return f"registered {c.model} version {c.version}  {c.digest}"
    if c.action == "alias":
        return f"{c.alias} -> {c.digest} (version {c.version}, {c.kind})"
    if c.action == "alias-removed":
        return f"{c.alias} was {c.message}"
    label = c.alias or f"{c.model} version {c.version}"
    return f"skipped {label}: {c.message}"


def _summary(report) -> str:
    registered = sum(1 for c in report.changes if c.action == "registered")
    moves = sum(1 for c in report.changes if c.action == "alias")
    skipped = sum(1 for c in report.changes if c.action == "skipped")
    text = (f"{report.models} models, {report.versions} versions: {registered} registered, "
            f"{report.known} already imported; {moves} alias moves")
    return text + (f"; {skipped} skipped" if skipped else "")


@import_app.command("mlflow")
def import_mlflow_cmd(tracking_uri: str = TRACKING, registry_uri: str = REGISTRY,
                      as_json: bool = JSON_OPTION) -> None:
    """Register every MLflow model version (digested from its artifacts) and point
    mlflow/<model>@<alias> at the version each MLflow alias names. Idempotent."""
    from rich.progress import Progress

    from ..integrations.mlflow import import_mlflow

    with opened() as store, Progress(console=err, transient=True,
                                     disable=as_json or not err.is_terminal) as progress:
        task = progress.add_task("downloading model versions", total=None)
        report = import_mlflow(store, tracking_uri, registry_uri,
                               on_version=lambda done, total: progress.update(
                                   task, completed=done, total=total))
    if as_json:
        print_json(report.to_dict())
        return
    for change in report.changes:
        out.print(_line(change), markup=False, emoji=False)
    out.print(_summary(report), markup=False, emoji=False)


@watch_app.command("mlflow")
def watch_mlflow_cmd(
    tracking_uri: str = TRACKING,
    registry_uri: str = REGISTRY,
    interval: str = typer.Option("30s", "--interval", help="Time between polls (e.g. 10s, 5m)."),
    max_polls: int = typer.Option(None, "--max-polls", min=1,
                                  help="Stop after this many polls (default: run until stopped)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Poll MLflow and record every alias move as an alias event (history MLflow does not
    keep), registering new versions as they appear. --json prints one JSON object per poll."""
    from ..integrations.mlflow import watch

    seconds = parse_duration(interval, field="--interval") / 1e6

    def on_poll(number, report, error) -> None:
        if as_json:
            body = {"poll": number, "error": None if error is None else str(error)}
            if report is not None:
                body.update(report.to_dict())
            sys.stdout.write(orjson.dumps(body).decode() + "\n")
        elif error is not None:
            err.print(f"poll {number}: error: {error}", markup=False, emoji=False)
        else:
            for change in report.changes:
                out.print(_line(change), markup=False, emoji=False)
            out.print(f"poll {number}: {_summary(report)}", markup=False, emoji=False)
        sys.stdout.flush()  # a watcher's output is read live (logs, pipes)

    with opened() as store:
        watch(store, tracking_uri, registry_uri, interval=seconds, max_polls=max_polls,
              on_poll=on_poll)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(watch_app, name="watch")
