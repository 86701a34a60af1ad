"""``modelward retention``, ``gc``, ``hold`` and ``holds``."""

from __future__ import annotations

import typer

from ..display import plural, size
from ..errors import ValidationError
from ..registry import retention as registry_retention
from ..registry.retention import ArtifactRetention, GcReport
from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, print_json


def _say(line: str) -> None:
    out.print(line)


def _days(us: int) -> str:
    days = us / 86_400_000_000
    return f"{days:g}d" if days >= 1 else f"{us / 3_600_000_000:g}h"


def _label(a) -> str:
    return f"{a.kind} {a.name}@{a.version}" if a.version else f"{a.kind} {a.name}"


def retention_cmd(
    verify: bool = typer.Option(False, "--verify", help="Rehash payloads instead of checking "
                                "presence and size."),
    retire: bool = typer.Option(False, "--retire", help="First drop the decisions past the "
                                "retention window that name no held artifact (whole "
                                "PostgreSQL month partitions where possible)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every artifact: the decisions inside the retention window that name it, aliases, holds,
    lineage, and its payload status. What nothing keeps is what `modelward gc` deletes."""
    with opened() as store:
        retired = registry_retention.retire_decisions(store) if retire else None
        report = registry_retention.retention_report(store, verify_payloads=verify)
    if as_json:
        print_json(report.to_dict() | ({"retired": retired.to_dict()} if retired else {}))
        return
    if retired is not None:
        _say(_retired_line(retired))
    _say(f"retention {_days(report.retention)}: decisions since {iso(report.since)} keep the "
         f"artifacts they name; gc grace {_days(report.grace)}")
    if not report.artifacts:
        _say("no artifacts")
        return
    for item in report.artifacts:
        _say(f"{item.artifact.digest}  {_label(item.artifact)}")
        _say(f"    kept by  {_kept_by(item)}")
        _say(f"    payload  {item.payload.describe()}")
    kept = sum(1 for i in report.artifacts if i.kept)
    _say(f"{plural(len(report.artifacts), 'artifact')}: {kept} kept, "
         f"{len(report.artifacts) - kept} not kept")


def _retired_line(r) -> str:
    if not r.blocks:
        return f"retired nothing: no block holds only decisions before {iso(r.before)}"
    how = []
    if r.partitions:
        how.append(f"{plural(len(r.partitions), 'partition')} dropped "
                   f"({', '.join(r.partitions)})")
    if r.row_blocks:
        how.append(f"{plural(r.row_blocks, 'block')} by row delete")
    return (f"retired {plural(len(r.blocks), 'block')} ({plural(r.decisions, 'decision')} "
            f"before {iso(r.before)}): {'; '.join(how)}")


def _kept_by(item: ArtifactRetention) -> str:
    parts = []
    if item.decisions:
        parts.append(f"{plural(item.decisions, 'decision')} (last {iso(item.last_referenced)})")
    if item.aliases:
        parts.append("alias " + ", ".join(item.aliases))
    if item.holds:
        parts.append(", ".join(f"hold {h.id}" for h in item.holds))
    if item.new:
        parts.append(f"new (registered {iso(item.artifact.created_at)})")
    if item.lineage_of:
        more = len(item.lineage_of) - 1
        parts.append(f"lineage of {item.lineage_of[0]}" + (f" and {more} more" if more else ""))
    if parts:
        return ", ".join(parts)
    if item.artifact.payload_deleted_at is not None:
        return f"nothing (payload deleted at {iso(item.artifact.payload_deleted_at)})"
    if item.artifact.payload != "blob":
        return "nothing (no payload of ours to delete)"
    return "NOTHING: gc deletes its payload"


def gc_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted; delete "
                                 "nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete the payloads of artifacts nothing keeps (no decision inside the retention
    window, no alias, no hold, no kept descendant, older than gc_grace)."""
    with opened() as store:
        report = registry_retention.gc(store, dry_run=dry_run)
    if as_json:
        print_json(report.to_dict())
        return
    for line in render_gc(report):
        _say(line)


def render_gc(report: GcReport) -> list[str]:
    verb = "would delete" if report.dry_run else "deleted"
    lines = []
    for item in report.items:
        lines.append(f"{verb} {item.artifact.digest}  {_label(item.artifact)}  "
                     f"{size(item.bytes)}" + (f"  ({item.note})" if item.note else ""))
        for b in item.blobs:
            what = {"deleted": size(b.size), "absent": "already gone",
                    "shared": f"{size(b.size)}, kept: a kept artifact shares it"}[b.action]
            lines.append(f"  {b.role:<14} {b.digest}  {what}")
    n = sum(1 for i in report.items if i.marked)
    kept = f"{plural(report.kept, 'artifact')} kept"
    if not report.items:
        lines.append(f"nothing to delete; {kept}")
    elif report.dry_run:
        lines.append(f"gc --dry-run: would delete {plural(n, 'payload')} "
                     f"({size(report.bytes)}); nothing was deleted; {kept}")
    else:
        lines.append(f"gc deleted {plural(n, 'payload')} ({size(report.bytes)}); {kept}")
    return lines


def hold_cmd(
    digest: str = typer.Argument(None, help="sha256: digest of a registered artifact."),
    reason: str = typer.Option(None, "--reason", help="Why (required; kept on record)."),
    actor: str = typer.Option(None, "--actor", help="Who (e-mail)."),
    release: int = typer.Option(None, "--release", metavar="ID",
                                help="Release hold ID instead (appends the release)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Protect an artifact's payload (and its lineage) from gc until released; or release a
    hold with --release ID. Holds and releases are appended, never edited."""
    if (digest is None) == (release is None):
        raise ValidationError("give either DIGEST to place a hold or --release ID to end one",
                              field="DIGEST")
    with opened() as store:
        if release is not None:
            h = registry_retention.release(store, release, reason, actor)
        else:
            h = registry_retention.hold(store, digest, reason, actor)
    if as_json:
        print_json(h.to_dict())
    elif release is not None:
        _say(f"hold {h.id} on {h.digest} released: {h.release_reason}")
    else:
        _say(f"hold {h.id} placed on {h.digest}: {h.reason}")


def holds_cmd(
    show_all: bool = typer.Option(False, "--all", help="Include released holds."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Holds in force (with --all, released ones too), oldest first."""
    with opened() as store:
        found = registry_retention.list_holds(store, include_released=show_all)
    if as_json:
        print_json([h.to_dict() for h in found])
        return
    if not found:
        _say("no holds")
    for h in found:
        line = f"{h.id:>4}  {h.digest}  since {iso(h.at)}"
        if h.actor:
            line += f" by {h.actor}"
        line += f"  ({h.reason})"
        if not h.active:
            line += f"  released {iso(h.released_at)}"
            if h.released_by:
                line += f" by {h.released_by}"
            line += f" ({h.release_reason})"
        _say(line)


def register(app: typer.Typer) -> None:
    app.command("retention")(retention_cmd)
    app.command("gc")(gc_cmd)
    app.command("hold")(hold_cmd)
    app.command("holds")(holds_cmd)
