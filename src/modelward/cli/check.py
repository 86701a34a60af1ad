"""``modelward check``, ``modelward explain CODE`` and ``modelward guards``."""

from __future__ import annotations

import inspect
from enum import StrEnum
from pathlib import Path

import typer

from ..errors import ValidationError
from ..timefmt import now_us
from ._common import JSON_OPTION, err, opened, out, parse_at, print_json, settings, write


class Format(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    junit = "junit"
    sarif = "sarif"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


def check_cmd(
    select: str = typer.Option(None, "--select", help="Code prefixes to run, comma-separated "
                               "(replaces check.select), e.g. MW1,MW301."),
    ignore: str = typer.Option(None, "--ignore", help="Code prefixes to skip, comma-separated "
                               "(added to check.ignore). The longest matching prefix wins."),
    fmt: Format = typer.Option(Format.text, "--format", help="Output format."),
    fail_on: Severity = typer.Option(None, "--fail-on", help="Exit 1 when a finding is at or "
                                     "above this severity (default: check.fail_on, else warning)."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even with findings "
                                   "(errors still exit 2)."),
    since: str = typer.Option(None, "--since", help="Only decisions since this ISO 8601 time or "
                              "this long ago (7d); default check.window, else all."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the report to FILE and print "
                                "only the summary line."),
    record: bool = typer.Option(True, "--record/--no-record", help="Record the run and its "
                                "findings in the ledger (the findings' history: opened, last "
                                "seen, resolved; new since the previous run)."),
) -> None:
    """Run the guards over the ledger: exit 0 clean, 1 when a finding reaches --fail-on,
    2 on a usage, configuration or storage error."""
    from ..alerts import config as alerts_config
    from ..alerts.deliver import notify
    from ..guards import run
    from ..guards.formats import render, summary_line
    from ..guards.history import run_and_record

    now = now_us()
    start = parse_at(since, "--since", now=now)
    s = settings()
    options = {"select": select, "ignore": ignore,
               "fail_on": fail_on.value if fail_on else None, "since": start, "now": now}
    alerting = record and bool(alerts_config.load(s).channels)  # a bad [alerts] fails first
    with opened() as store:
        if record:
            report, run_id = run_and_record(store, s, source="check", **options)
            if alerting:  # on stderr: stdout stays the report
                err.print(notify(store, s, run_id).line())
        else:
            report = run(store, s, **options)
    rendered = render(report, fmt.value, docs_url=s.docs_url)
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(rendered)
        except OSError as exc:
            raise ValidationError(f"cannot write {output}: {exc.strerror}",
                                  field="--output") from None
        out.print(summary_line(report))
    else:
        write(rendered, json=fmt.value in ("json", "sarif"))
    raise typer.Exit(report.exit_code(exit_zero=exit_zero))


def explain_cmd(code: str = typer.Argument(..., help="A guard code, e.g. MW105.")) -> None:
    """Print a guard's documentation: what it checks, why, an example, the fix, its options."""
    from ..guards import registry

    row = registry.get(code)
    header = f"{row.code} {row.name} (default severity {row.severity}, {row.status})"
    if row.status != "active":
        body = (f"Fires when {row.summary}.\n\nThis code is reserved: a later release "
                "implements the guard. Selecting it now runs nothing.")
    else:
        body = inspect.cleandoc(registry.load(row.code).__doc__)
    write(f"{header}\n\n{body}\n")


def guards_cmd(as_json: bool = JSON_OPTION) -> None:
    """List every guard code: name, default severity and status (active or planned)."""
    from ..guards import registry

    if as_json:
        print_json([row.to_dict() for row in registry.CODES])
        return
    width = max(len(row.name) for row in registry.CODES)
    for row in registry.CODES:
        out.print(f"{row.code}  {row.name:<{width}}  {row.severity:<7}  {row.status}")


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)
    app.command("explain")(explain_cmd)
    app.command("guards")(guards_cmd)
