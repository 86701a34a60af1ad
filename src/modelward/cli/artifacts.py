"""``modelward register`` and ``modelward artifacts``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ValidationError
from ..ledger import artifacts as ledger_artifacts
from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, parse_timestamp, print_json


def register_cmd(
    kind: str = typer.Argument(..., help="model, adapter, prompt, embedder, reranker, dataset, "
                               "evalset, config or policy."),
    path: Path = typer.Argument(None, help="File or directory to register (omit with --hosted)."),
    name: str = typer.Option(..., "--name", help="Human name, e.g. support-chat."),
    version: str = typer.Option(None, "--version", help="Version label (metadata only)."),
    owner: str = typer.Option(None, "--owner", help="Owner's e-mail."),
    parent: list[str] = typer.Option(None, "--parent", help="Digest of a parent (repeatable)."),
    base: str = typer.Option(None, "--base", help="Digest of the base model this fine-tune was "
                             "trained from (lineage relation 'base')."),
    no_store: bool = typer.Option(False, "--no-store", help="Record the digest but keep no payload."),
    hosted: str = typer.Option(None, "--hosted", help="VENDOR:MODEL_ID of a vendor-held model."),
    retires: str = typer.Option(None, "--retires", help="Vendor retirement date (ISO 8601) of a hosted model."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an artifact by content; prints its sha256: digest. Idempotent."""
    with opened() as store:
        if hosted:
            if path is not None:
                raise ValidationError("give either PATH or --hosted, not both", field="path")
            retires_at = parse_timestamp(_date(retires), "--retires") if retires else None
            reg = ledger_artifacts.register_hosted(store, hosted, name=name, kind=kind,
                                                   version=version, owner=owner,
                                                   parents=_parents(parent, base),
                                                   retires_at=retires_at)
        else:
            if path is None:
                raise ValidationError("give the PATH of the file or directory to register",
                                      field="path", hint="or --hosted VENDOR:MODEL_ID")
            if retires:
                raise ValidationError("--retires applies to --hosted models only", field="--retires")
            reg = ledger_artifacts.register_path(store, kind, path, name=name, version=version,
                                                 owner=owner, parents=_parents(parent, base),
                                                 store_payload=not no_store)
    if as_json:
        print_json({"digest": reg.artifact.digest, "created": reg.created,
                    "restored_payload": reg.restored_payload, "artifact": reg.artifact.to_dict()})
    else:
        out.print(reg.artifact.digest)


def _parents(parent: list[str] | None, base: str | None) -> list[tuple[str, str]]:
    out = [(p, "parent") for p in parent or ()]
    if base:
        out.append((base, "base"))
    return out


def _date(text: str) -> str:
    return text + "T00:00:00Z" if len(text) == 10 else text


def list_cmd(
    kind: str = typer.Option(None, "--kind", help="Only artifacts of this kind."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List registered artifacts."""
    with opened() as store, store.read() as conn:
        arts = ledger_artifacts.list_artifacts(conn, kind)
    if as_json:
        print_json([a.to_dict() for a in arts])
        return
    if not arts:
        out.print("no artifacts")
        return
    for a in arts:
        where = a.hosted_id if a.payload == "vendor" else a.payload
        label = f"{a.name}@{a.version}" if a.version else a.name
        out.print(f"{a.digest}  {a.kind:<8}  {label:<30}  {iso(a.created_at)}  {where}")


def register(app: typer.Typer) -> None:
    app.command("register")(register_cmd)
    app.command("artifacts")(list_cmd)
