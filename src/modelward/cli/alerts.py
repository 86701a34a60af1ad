"""``modelward alerts list|send|test``: the notifications guard runs queued, and sending them."""

from __future__ import annotations

import typer

from ..display import plural
from ._common import JSON_OPTION, opened, out, print_json, settings
from ._group import typer_app

alerts_app = typer_app(help="Notifications of findings opened and resolved ([alerts] of "
                         "modelward.toml).", no_args_is_help=True)


@alerts_app.command("list")
def list_cmd(
    status: str = typer.Option(None, "--status", help="Only pending, delivered or failed."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    as_json: bool = JSON_OPTION,
) -> None:
    """The newest deliveries: channel, finding, transition, status and attempts."""
    from ..errors import ValidationError
    from ..ledger import alerts as ledger_alerts

    if status is not None and status not in ledger_alerts.STATUSES:
        raise ValidationError(f"--status must be one of {', '.join(ledger_alerts.STATUSES)}, "
                              f"got {status!r}", field="--status")
    with opened() as store, store.read() as conn:
        rows = ledger_alerts.recent(conn, limit=limit, status=status)
    if as_json:
        print_json([d.to_dict() for d in rows])
        return
    if not rows:
        out.print("no alert deliveries")
        return
    for d in rows:
        line = (f"{d.to_dict()['created_at']}  {d.channel:<16} {d.code:<6} {d.transition:<8} "
                f"{d.status:<9} {plural(d.attempts, 'attempt')}")
        out.print(line + (f"  ({d.last_error})" if d.last_error else ""))


@alerts_app.command("send")
def send_cmd() -> None:
    """Send every pending delivery that is due now (guard runs send theirs themselves)."""
    from ..alerts.config import load
    from ..alerts.deliver import deliver_due

    cfg = load(settings())
    with opened() as store:
        summary = deliver_due(store, cfg)
    out.print(summary.line())
    if summary.failed or summary.retrying:
        raise typer.Exit(1)


@alerts_app.command("test")
def test_cmd(channel: str = typer.Argument(..., help="A channel name from [[alerts.channels]].")
             ) -> None:
    """Send a test message to one channel now (not recorded); exit 1 when it fails."""
    from ..alerts.config import load
    from ..alerts.deliver import send
    from ..alerts.messages import build
    from ..ids import uuid7
    from ..ledger.alerts import Transition
    from ..timefmt import now_us

    cfg = load(settings())
    ch = cfg.channel(channel)
    now = now_us()
    probe = Transition("opened", "test", "test", "MW000", "info", "modelward alert test",
                       f"a test message to channel {ch.name}", None, {}, now, None)
    try:
        send(ch, build(ch, probe, cfg.dashboard_url), uuid7())
    except (OSError, ValueError) as exc:
        out.print(f"{ch.name}: not delivered: {exc}")
        raise typer.Exit(1) from None
    out.print(f"{ch.name}: delivered")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
