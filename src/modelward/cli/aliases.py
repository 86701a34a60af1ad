"""``modelward alias set|resolve|history|list|owners``."""

from __future__ import annotations

import typer

from ..display import inert
from ..ledger import aliases as ledger_aliases
from ..registry import protection
from ..timefmt import iso
from ._common import JSON_OPTION, identity, opened, out, parse_at, print_json
from ._group import typer_app

alias_app = typer_app(help="Mutable names with append-only, time-indexed history.",
                        no_args_is_help=True)


@alias_app.command("set")
def set_cmd(
    alias: str = typer.Argument(..., help="Alias name, e.g. chat/v1."),
    digest: str = typer.Argument(..., help="sha256: digest of a registered artifact."),
    reason: str = typer.Option(None, "--reason", help="Why it moves (kept in history)."),
    actor: str = typer.Option(None, "--actor", help="Who moves it (e-mail; default "
                              "MODELWARD_ACTOR, `actor` in modelward.toml, or git's "
                              "user.email)."),
    at: str = typer.Option(None, "--at", help="When (ISO 8601 or a duration back from "
                           "now, e.g. 2h; default now; never before the last move, never in "
                           "the future)."),
    break_glass: bool = typer.Option(False, "--break-glass", help="Move a protected alias "
                                     "(one with reviewers of record) without a promotion: "
                                     "an emergency, recorded and reported by MW206; needs "
                                     "--reason."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Point an alias at a registered artifact; the move is appended to its history.

    An alias with reviewers of record is protected: it moves only through `modelward promote`
    (or --break-glass --reason). The CLI acts on the ledger's database directly, so its
    user counts as an admin."""
    who = identity(actor, "--actor")
    with opened() as store:
        event, moved = protection.move_alias(store, alias, digest, actor=who, reason=reason,
                                             at=parse_at(at), break_glass=break_glass,
                                             admin=True)
    if as_json:
        print_json({"moved": moved, "event": event.to_dict()})
    elif not moved:
        out.print(f"{alias} already points at {digest}")
    else:
        out.print(f"{alias} -> {digest} ({event.kind})")


@alias_app.command("resolve")
def resolve_cmd(
    alias: str = typer.Argument(...),
    at: str = typer.Option(None, "--at", help="Resolve as of this time (ISO 8601 or a duration back "
                    "from now, e.g. 7d)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the digest an alias points to now, or pointed to at --at."""
    with opened() as store, store.read() as conn:
        res = ledger_aliases.resolve_at(conn, alias, parse_at(at))
    if as_json:
        print_json(res.to_dict())
    else:
        out.print(res.digest)


@alias_app.command("history")
def history_cmd(alias: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Every move of an alias, oldest first, rollbacks included."""
    with opened() as store, store.read() as conn:
        events = ledger_aliases.history(conn, alias)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    for e in events:
        line = f"{iso(e.at)}  {e.kind:<8}  {e.digest}"
        if e.actor:
            line += f"  by {e.actor}"
        if e.reason:
            line += f"  ({e.reason})"
        out.print(inert(line))


@alias_app.command("list")
def list_cmd(as_json: bool = JSON_OPTION) -> None:
    """Every alias and what it points to now."""
    with opened() as store, store.read() as conn:
        events = ledger_aliases.list_aliases(conn)
    if as_json:
        print_json([{"alias": e.alias, "digest": e.digest, "since": iso(e.at)} for e in events])
        return
    if not events:
        out.print("no aliases")
    for e in events:
        out.print(inert(f"{e.alias:<32}  {e.digest}  since {iso(e.at)}"))


@alias_app.command("owners")
def owners_cmd(
    alias: str = typer.Argument(...),
    owner: list[str] = typer.Option(None, "--owner", help="Owner of record (e-mail); "
                                    "repeatable; replaces the owners."),
    reviewer: list[str] = typer.Option(None, "--reviewer", help="Reviewer of record (e-mail); "
                                       "repeatable; replaces the reviewers."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set an alias's owners and reviewers of record (a role not given is kept); with no
    option, print them with their standing in the roster."""
    from ..ledger import people

    with opened() as store, (store.write() if owner or reviewer else store.read()) as conn:
        if owner or reviewer:
            held = people.set_roles(conn, alias, owners=owner or None,
                                    reviewers=reviewer or None)
        else:
            held = people.roles(conn, alias)
        team = people.roster(conn)
    if as_json:
        print_json(held.to_dict(team))
        return
    if not held:
        out.print(f"{alias} has no owners or reviewers of record")
        return
    lines = [alias]
    width = max(len(e) for e in [*held.owners, *held.reviewers])
    for role, emails in (("owner", held.owners), ("reviewer", held.reviewers)):
        for email in sorted(emails):
            state = people.standing(team, email)
            if state == "unknown":
                state = "not in the roster" if team else ""
            lines.append(f"  {role:<8}  {email:<{width}}  {state}".rstrip())
    out.print("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.add_typer(alias_app, name="alias")
