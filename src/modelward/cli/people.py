"""``modelward people sync|list``: the roster owners and reviewers are judged against."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ValidationError
from ..ledger import people as ledger_people
from ._common import JSON_OPTION, err, opened, out, print_json, read_input
from ._group import typer_app

people_app = typer_app(help="The roster: who is on the team, who left.", no_args_is_help=True)


def _print(text: str) -> None:
    out.print(text)


@people_app.command("sync")
def sync_cmd(
    file: Path = typer.Argument(..., help="CSV with the header email,name,status,team "
                                "(status active or left; name and team optional)."),
    prune: bool = typer.Option(False, "--prune", help="Mark people absent from the file as "
                               "left (default: leave them alone)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Bring the roster in line with a CSV, all or nothing: any bad line (each is named
    with its line number) rejects the whole file."""
    try:
        rows = ledger_people.parse_csv(read_input(file), name=str(file))
    except ValidationError as exc:
        for p in exc.problems[1:]:
            err.print(f"  {p.message}")
        raise
    with opened() as store:
        res = ledger_people.sync(store, rows, prune=prune)
    if as_json:
        print_json(res.to_dict())
        return
    lines = [f"{file}: {len(res.added)} added, {len(res.updated)} updated, "
             f"{len(res.unchanged)} unchanged" + (f", {len(res.pruned)} marked left"
                                                   if prune else "")]
    lines += [f"  + {e}" for e in res.added]
    lines += [f"  ~ {e}: {', '.join(changes)}" for e, changes in res.updated]
    lines += [f"  - {e}: not in the file, marked left" for e in res.pruned]
    _print("\n".join(lines))


@people_app.command("list")
def list_cmd(
    status: str = typer.Option(None, "--status", help="Only people who are active, or left."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Everyone in the roster: e-mail, status, team, name."""
    with opened() as store, store.read() as conn:
        found = ledger_people.list_people(conn, status)
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    if not found:
        _print("nobody in the roster" + (f" is {status}" if status else
                                         "; sync one with `modelward people sync FILE.csv`"))
        return
    rows = [(p.email, p.status, p.team or "-", p.name or "-") for p in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    _print("\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in rows))


def register(app: typer.Typer) -> None:
    app.add_typer(people_app, name="people")
