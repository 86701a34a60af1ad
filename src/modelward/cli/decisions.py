"""``modelward decisions import|show|search`` and ``modelward erase``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..display import plural
from ..ledger import decisions as ledger_decisions
from ..ledger import erasure
from ..timefmt import iso
from ._common import JSON_OPTION, importing, opened, out, parse_at, print_json, read_input
from ._group import typer_app

decisions_app = typer_app(help="Production decisions and their record.", no_args_is_help=True)


@decisions_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="JSON lines, one decision per line ('-' for stdin)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Backfill decisions; any bad line rejects the file and nothing is written."""
    import sys

    if str(file) == "-":
        lines = sys.stdin.buffer.read().split(b"\n")
    else:
        lines = read_input(file).split(b"\n")
    with opened() as store, importing(as_json):
        res = ledger_decisions.import_jsonl(store, lines)
    if as_json:
        print_json({"ok": True, "imported": res.inserted, "duplicates": res.duplicates})
    else:
        out.print(f"imported {plural(res.inserted, 'decision')}"
                  + (f" ({res.duplicates} already recorded)" if res.duplicates else ""))


@decisions_app.command("show")
def show_cmd(decision_id: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Print one decision as recorded."""
    with opened() as store, store.read() as conn:
        d = ledger_decisions.get(conn, decision_id)
    if as_json:
        print_json(d.to_dict())
        return
    for k, v in d.to_dict().items():
        if v is not None:
            out.print(f"{k:<20} {v}")


@decisions_app.command("search")
def search_cmd(
    subject: str = typer.Option(None, "--subject"),
    alias: str = typer.Option(None, "--alias"),
    since: str = typer.Option(None, "--since", help="ISO 8601, or a duration back from now "
                         "(7d)."),
    until: str = typer.Option(None, "--until", help="ISO 8601, or a duration back from now "
                         "(1h)."),
    limit: int = typer.Option(50, "--limit", min=1, help="Most decisions to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Find decisions by subject, alias and time (newest first)."""
    with opened() as store, store.read() as conn:
        found = ledger_decisions.search(conn, subject=subject, alias=alias,
                                        since=parse_at(since, "--since"),
                                        until=parse_at(until, "--until"), limit=limit)
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    for d in found:
        out.print(f"{d.id}  {iso(d.at)}  {d.alias or '-':<20}  {d.model_digest or '-'}  "
                  f"{d.subject or '-'}")


def erase_cmd(
    subject: str = typer.Option(..., "--subject", help="The subject whose text to erase."),
    vacuum: bool = typer.Option(False, "--vacuum", help="PostgreSQL: then VACUUM FULL the "
                                "text and key tables, so no old row version is left in their "
                                "files (locks each table while it is rewritten)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Erase the raw input/output text kept for a subject and destroy the key of its
    chained digests; the chained record stays intact."""
    with opened() as store:
        report = erasure.erase(store, subject)
        vacuumed = erasure.vacuum(store) if vacuum else erasure.VacuumReport([])
    if as_json:
        print_json({**report.to_dict(), "vacuumed": vacuumed.tables,
                    "vacuum_held_back": vacuumed.held_back})
        return
    s = report.subject
    line = f"erased the text of {plural(report.texts, 'decision')} of {s}"
    if report.key_destroyed:
        line += " and destroyed its digest key"
    out.print(line)
    if report.plain_digests:
        out.print(f"note: {plural(report.plain_digests, 'decision')} of {s} chain plain "
                  "sha256 digests (recorded before keyed digests): erasure cannot shred them, "
                  "and a guessable text can still be recovered from them")
    if report.wal_truncated is False:
        out.print("note: a reader held an old snapshot, so the WAL still holds the erased "
                  f"pages; run `modelward erase --subject {s}` again to truncate it")
    if vacuumed.tables:
        out.print(f"rewrote {', '.join(vacuumed.tables)} (VACUUM FULL)")
    if vacuumed.held_back:
        out.print(f"note: {plural(vacuumed.held_back, 'transaction')} open since before the "
                  "erasure may still see the old rows, so VACUUM FULL kept them; run `modelward "
                  f"erase --subject {s} --vacuum` again once they end")


def register(app: typer.Typer) -> None:
    app.add_typer(decisions_app, name="decisions")
    app.command("erase")(erase_cmd)
