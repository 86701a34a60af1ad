"""``modelward findings list|ack|unack``: the findings' lifecycle as the recorded guard runs
left it, and acknowledging or snoozing a finding (:mod:`modelward.guards.acks`)."""

from __future__ import annotations

import typer

from ._common import JSON_OPTION, identity, opened, out, print_json
from ._group import typer_app

findings_app = typer_app(help="Findings opened, acknowledged and resolved by the recorded "
                           "guard runs; acknowledge or snooze one.", no_args_is_help=True)


@findings_app.command("list")
def list_cmd(
    state: str = typer.Option("open", "--state", help="open (not acknowledged), "
                              "acknowledged, resolved or all."),
    guard: str = typer.Option(None, "--guard", help="Only codes starting with this (MW1)."),
    limit: int = typer.Option(1000, "--limit", min=1, max=10_000),
    as_json: bool = JSON_OPTION,
) -> None:
    """Findings by state, newest activity first: key, code, state, first and last seen,
    who acknowledged them."""
    from ..errors import ValidationError
    from ..guards.acks import lifecycle_item
    from ..guards.history import Filters
    from ..ledger import findings as ledger_findings

    if state not in ledger_findings.STATES:
        raise ValidationError(f"--state must be one of {', '.join(ledger_findings.STATES)}, "
                              f"got {state[:40]!r}", field="--state")
    prefix = Filters.parse(guard=guard).guard if guard else None
    with opened() as store, store.read() as conn:
        rows = [lifecycle_item(r) for r in
                ledger_findings.by_state(conn, state, guard=prefix, limit=limit)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"no {state} findings" if state != "all" else "no findings")
        return
    for r in rows:
        line = (f"{r['key']}  {r['code']:<6} {r['severity']:<7} {r['state']:<12} "
                f"first {r['opened_at']}  last {r['last_seen_at']}  {r['subject']}")
        if r["acknowledged_by"]:
            line += (f"  (acknowledged by {r['acknowledged_by']}"
                     + (f" until {r['ack_until']}" if r["ack_until"] else "")
                     + f": {r['ack_reason']})")
        out.print(line)


@findings_app.command("ack")
def ack_cmd(
    key: str = typer.Argument(..., help="The finding's key (fingerprint)."),
    reason: str = typer.Option(..., "--reason", help="Why it may be silenced (required)."),
    until: str = typer.Option(None, "--until", help="Snooze: until this ISO 8601 time or "
                              "for this long (7d, at most 365d). Default: until it resolves."),
    actor: str = typer.Option(None, "--as", "--actor", help="Your e-mail (default: "
                              "MODELWARD_ACTOR, `actor` in modelward.toml, git user.email)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Acknowledge (or snooze) an open finding: `check` counts it as suppressed and no
    alert announces it while the ack lasts."""
    from ..guards import acks

    who = identity(actor, "--as")
    with opened() as store:
        ack = acks.acknowledge(store, key, actor=who, reason=reason, until=until)
    if as_json:
        print_json(ack.to_dict())
        return
    d = ack.to_dict()
    out.print(f"{ack.finding_key} ({ack.code}) acknowledged by {ack.actor}"
              + (f" until {d['until']}" if ack.until else " until it resolves"))


@findings_app.command("unack")
def unack_cmd(
    key: str = typer.Argument(..., help="The finding's key (fingerprint)."),
    actor: str = typer.Option(None, "--as", "--actor", help="Your e-mail (as for ack)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke a finding's active acknowledgement."""
    from ..guards import acks

    who = identity(actor, "--as")
    with opened() as store:
        ack = acks.unacknowledge(store, key, actor=who)
    if as_json:
        print_json(ack.to_dict())
        return
    out.print(f"{ack.finding_key} ({ack.code}): acknowledgement by {ack.actor} revoked by "
              f"{who}")


def register(app: typer.Typer) -> None:
    app.add_typer(findings_app, name="findings")
