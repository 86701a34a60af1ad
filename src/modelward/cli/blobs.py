"""``modelward blobs migrate --to URL`` and ``modelward fetch ALIAS --to DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ValidationError
from ._common import JSON_OPTION, opened, out, parse_at, print_json, settings
from ._group import typer_app

blobs_app = typer_app(help="The content-addressed blob store (local directory or object "
                        "store).", no_args_is_help=True)


def _say(text: str) -> None:
    out.print(text)


@blobs_app.command("migrate")
def migrate_cmd(
    to: str = typer.Option(..., "--to", help="The target store: s3://bucket/prefix, "
                           "gs://bucket/prefix, az://container/prefix or a directory."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Copy every blob of the configured store to another and verify each digest there.

    The source is left unchanged; set MODELWARD_BLOB_URL (or blob_url in modelward.toml)
    to the target once the report is clean. Exits 1 when a blob could not be copied or
    did not verify."""
    from ..ledger.blobs import open_blob_store
    from ..registry.migrate import migrate

    s = settings()
    with opened() as store:
        target = open_blob_store(to, cache_dir=s.cache_path)
        if target.url == store.blobs.url:
            raise ValidationError(f"{to} is the store already in use", field="--to")
        report = migrate(store.blobs, target)
    if as_json:
        print_json(report.to_dict())
    else:
        _say(f"{report.source} -> {report.target}")
        _say(f"blobs {report.blobs}: copied {report.copied} "
             f"({report.bytes_copied:,} bytes), already present {report.already}, "
             f"verified in the target {report.verified}")
        for label, items in (("CORRUPT in the source (not copied)", report.corrupt_source),
                             ("MISSING from the source", report.missing_source),
                             ("FAILED verification in the target", report.failed_target)):
            for digest in items:
                _say(f"  {label}: {digest}")
        _say("ok: every blob verified in the target" if report.ok else
             "not ok: fix the blobs above (re-register their artifacts) and run it again")
    raise typer.Exit(0 if report.ok else 1)


def fetch_cmd(
    alias: str = typer.Argument(..., help="An alias (chat/v1) or a digest (sha256:…)."),
    to: Path = typer.Option(..., "--to", help="Directory to write the payload into."),
    at: str = typer.Option(None, "--at", help="Resolve the alias as of this time (ISO 8601 or a "
                    "duration back from now, e.g. 7d)."),
    name: str = typer.Option(None, "--name", help="File or directory name to write "
                             "(default: the artifact's name)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a verified copy of what ALIAS resolves to into DIR (a file, or a directory
    for a directory artifact); a payload whose bytes no longer match its digest is
    refused."""
    from ..ledger import aliases as ledger_aliases
    from ..ledger import artifacts as ledger_artifacts
    from ..registry.loading import fetch

    when = parse_at(at)
    with opened() as store:
        with store.read() as conn:
            if alias.startswith("sha256:"):
                digest, res = alias, None
            else:
                res = ledger_aliases.resolve_at(conn, alias, when)
                digest = res.digest
            art = ledger_artifacts.get(conn, digest)
        written = fetch(store, art, to, name=name)
    if as_json:
        print_json({"alias": None if res is None else res.alias, "digest": digest,
                    "kind": art.kind, "path": str(written),
                    "is_directory": art.is_directory})
    else:
        _say(f"{alias} -> {digest} ({art.kind} {art.name})")
        _say(f"wrote {written} (verified)")


def register(app: typer.Typer) -> None:
    app.add_typer(blobs_app, name="blobs")
    app.command("fetch")(fetch_cmd)
