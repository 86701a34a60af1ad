"""``modelward import mlflow``, ``modelward watch`` (the guards, as the ledger changes) and
``modelward watch mlflow``."""

from __future__ import annotations

import sys

import orjson
import typer

from ..timefmt import parse_duration
from ._common import JSON_OPTION, err, opened, out, print_json, write
from ._group import typer_app

import_app = typer_app(help="Import artifacts and aliases from other systems.",
                         no_args_is_help=True)
watch_app = typer_app(help="Run the guards as the ledger changes and send the alerts of "
                        "what opened or resolved (no sub-command); or watch another system "
                        "and record what changes (mlflow).", invoke_without_command=True)


@watch_app.callback()
def watch_guards_cmd(
    ctx: typer.Context,
    interval: str = typer.Option("5m", "--interval", help="Run at least this often (the "
                                 "backstop when nothing is written)."),
    min_gap: str = typer.Option("10s", "--min-gap", help="After new blocks, wait at least "
                                "this long since the last run."),
    once: bool = typer.Option(False, "--once", help="One run, then exit."),
) -> None:
    """Run the guards whenever a write seals new blocks (at most every --min-gap) and at
    least every --interval; record each run and send its alerts ([alerts] of
    modelward.toml). One timestamped line per run."""
    if ctx.invoked_subcommand is not None:
        return
    from ..alerts.config import load
    from ..alerts.watch import watch
    from ..timefmt import iso, now_us
    from ._common import settings

    every = parse_duration(interval, field="--interval") / 1e6
    gap = parse_duration(min_gap, field="--min-gap") / 1e6
    s = settings()
    load(s)  # a bad [alerts] table stops it before the first run

    def said(ran) -> None:
        out.print(f"{iso(now_us())[:19]}Z run {ran.run_id} ({ran.reason}, block {ran.head}, "
                  f"{len(ran.guards)} guards): {ran.findings} findings in {ran.seconds:.1f}s; "
                  f"{ran.alerts.line()}")
        sys.stdout.flush()

    with opened() as store:
        try:
            watch(store, s, interval=every, min_gap=gap, once=once, on_run=said)
        except KeyboardInterrupt:
            pass

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
    if c.action == "alias-deleted":
        return f"{c.alias} deleted (it pointed at {c.previous_digest})"
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
        out.print(_line(change))
    out.print(_summary(report))


@watch_app.command("mlflow")
def watch_mlflow_cmd(
    tracking_uri: str = TRACKING,
    registry_uri: str = REGISTRY,
    interval: str = typer.Option("30s", "--interval", help="Time between polls (e.g. 10s, 5m); "
                                 "with webhooks, between reconciling polls."),
    max_polls: int = typer.Option(None, "--max-polls", min=1,
                                  help="Stop after this many polls (default: run until stopped)."),
    listen: str = typer.Option(None, "--listen", help="HOST:PORT to receive MLflow's webhooks "
                               "on (real time; needs an MLflow server that supports them, "
                               "else the watch polls)."),
    public_url: str = typer.Option(None, "--public-url", help="The URL MLflow reaches the "
                                   "listener at (default http://HOST:PORT/mlflow)."),
    secret: str = typer.Option(None, "--secret", envvar="MODELWARD_MLFLOW_WEBHOOK_SECRET",
                               help="Webhook signing secret (default: a random one per run)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print a line for polls "
                                 "that changed nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Keep the ledger in step with MLflow: every alias move becomes an alias event and
    every deleted alias an alias deletion (history MLflow does not keep), new versions are
    registered. Prints one timestamped line per change; --json one object per change."""
    from ..integrations.mlflow_watch import watch
    from ..timefmt import iso, now_us

    seconds = parse_duration(interval, field="--interval") / 1e6

    def say(text: str, *, error: bool = False) -> None:
        (err if error else out).print(f"{iso(now_us())[:19]}Z {text}")
        sys.stdout.flush()  # a watcher's output is read live (logs, pipes)

    def emit(how: str, report, error, **more) -> None:
        if as_json:
            for change in (report.changes if report is not None else []):
                body = {"at": iso(now_us()), "via": how, **change.to_dict(), **more}
                write(orjson.dumps(body).decode() + "\n", json=True)
            if error is not None:
                write(orjson.dumps({"at": iso(now_us()), "via": how,
                                    "error": str(error), **more}).decode() + "\n", json=True)
            return
        if error is not None:
            say(f"{how} error: {error}", error=True)
            return
        for change in report.changes:
            say(_line(change))

    def on_poll(number, report, error) -> None:
        emit("poll", report, error, poll=number)
        if not as_json and error is None and (number == 1 or verbose):
            say(f"poll {number}: {_summary(report)}")

    def on_event(event, report, error) -> None:
        emit("webhook", report, error)

    def on_mode(mode, detail) -> None:
        if as_json:
            return
        if mode == "webhooks":
            say(f"watching {tracking_uri}: webhooks to {detail}, reconciling every {interval}")
        else:
            say(f"watching {tracking_uri}: polling every {interval}"
                + (f" ({detail})" if detail else ""))

    with opened() as store:
        watch(store, tracking_uri, registry_uri, interval=seconds, max_polls=max_polls,
              on_poll=on_poll, listen=listen, public_url=public_url, secret=secret,
              on_event=on_event, on_mode=on_mode)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(watch_app, name="watch")
