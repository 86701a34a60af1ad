"""``modelward archive``: sealed decision blocks to Parquet files on a blob store."""

from __future__ import annotations

import typer

from ..display import plural, size
from ..registry import archive as registry_archive
from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, print_json


def archive_cmd(
    older_than: str = typer.Option(..., "--older-than", help="Archive the sealed decision "
                                   "blocks whose decisions are all older than this (e.g. 90d)."),
    to: str = typer.Option(..., "--to", help="Blob store for the Parquet files: s3://bucket/"
                           "prefix, gs://…, az://…, file:///dir or a directory."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be archived; write "
                                 "and delete nothing."),
    max_file_decisions: int = typer.Option(
        registry_archive.MAX_FILE_DECISIONS, "--max-file-decisions", min=1,
        help="At most this many decisions a file (whole blocks; a file never spans months). "
             "Memory does not grow with it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move sealed decision blocks older than --older-than to Parquet files on a blob store
    (checked, then recorded in the chain with their sha256 and block roots), then drop them
    from the database; `verify --full` and `audit` still prove them."""
    with opened() as store:
        report = registry_archive.archive(store, older_than=older_than, to=to,
                                          dry_run=dry_run,
                                          max_decisions=max_file_decisions)
    if as_json:
        print_json(report.to_dict())
        return
    if report.dry_run:
        out.print(f"would archive {plural(report.would_blocks, 'block')} "
                  f"({plural(report.would_decisions, 'decision')} before "
                  f"{iso(report.before)}) to {report.url}")
        return
    if not report.files:
        out.print(f"archived nothing: no unarchived block holds only decisions before "
                  f"{iso(report.before)}")
        return
    for f in report.files:
        d = f.to_dict()
        out.print(f"archived blocks {d['first_block']}-{d['last_block']} "
                  f"({plural(f.decisions, 'decision')}, {size(f.bytes)}, "
                  f"{d['bytes_per_decision']} B/decision) to {d['file']}"
                  + (f"; partitions dropped: {', '.join(f.partitions)}" if f.partitions else ""))
    out.print(f"{plural(report.decisions, 'decision')} archived before {iso(report.before)}")


def register(app: typer.Typer) -> None:
    app.command("archive")(archive_cmd)
