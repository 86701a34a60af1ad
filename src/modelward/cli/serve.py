"""``modelward serve`` and ``modelward token create|list|revoke``."""

from __future__ import annotations

import typer

from ..display import duration
from ..errors import ValidationError
from ..ledger import tokens as ledger_tokens
from ..ledger.engine import Store
from ..timefmt import parse_duration
from ._common import JSON_OPTION, opened, out, print_json, settings
from ._group import typer_app

token_app = typer_app(help="API tokens (stored only as hashes).", no_args_is_help=True)


def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Worker processes (each builds its own app; use "
                                "PostgreSQL for more than one)."),
    watch_every: str = typer.Option(None, "--watch", metavar="INTERVAL",
                                    help="Run the guards in the server as the ledger changes "
                                    "and at least this often, sending alerts (default: "
                                    "setting watch_interval; unset: off)."),
    watch_min_gap: str = typer.Option(None, "--watch-min-gap", metavar="DURATION",
                                      help="With --watch: after new blocks, wait at least "
                                      "this long since the last run (default: setting "
                                      "watch_min_gap, 10s)."),
    metrics_listen: str = typer.Option(None, "--metrics-listen", metavar="HOST:PORT",
                                       help="Also serve /metrics without a token here "
                                       "(default: setting metrics_listen)."),
) -> None:
    """Serve the JSON API (/api/v1), OTLP ingest (/v1/traces) and the dashboard."""
    import os

    import uvicorn

    from ..web.app import create_app

    resolved = settings()
    listen, option = ((metrics_listen, "--metrics-listen") if metrics_listen
                      else (resolved.metrics_listen, "metrics_listen"))
    if listen:
        _check_listen(listen, option, workers)
    every = (parse_duration(watch_every, field="--watch") if watch_every
             else resolved.watch_interval)
    gap = (parse_duration(watch_min_gap, field="--watch-min-gap") if watch_min_gap
           else resolved.watch_min_gap)
    if every:
        from ..alerts.config import load

        load(resolved)  # a bad [alerts] table stops the server before it listens
    app = create_app(resolved)  # checks the ledger (and its schema) before listening
    if every:
        from ..alerts.watch import start_in_thread

        start_in_thread(app.state.store if workers == 1 else Store(resolved), resolved,
                        every / 1e6, min_gap=gap / 1e6)
        out.print(f"running the guards as the ledger changes (at most every "
                  f"{duration(gap)}), at least every {duration(every)}")
    out.print(f"modelward serving on http://{host}:{port} (ledger {app.state.store.display_url})"
              + (f", {workers} workers" if workers > 1 else ""))
    if workers == 1:
        if listen:
            from ..web.metrics import serve_separately

            serve_separately(app, listen)
            out.print(f"metrics on http://{listen}/metrics (no token)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    app.state.store.dispose()
    # Worker processes import the app by name and build it from the environment: hand them
    # what this command resolved from its own options.
    os.environ["MODELWARD_HOME"] = str(resolved.home_path.resolve())
    os.environ["MODELWARD_DATABASE_URL"] = resolved.resolved_database_url
    if resolved.config_path is not None:
        os.environ["MODELWARD_CONFIG"] = str(resolved.config_path.resolve())
    uvicorn.run("modelward.web.app:app_from_environment", factory=True, host=host, port=port,
                log_level="warning", workers=workers)


def _check_listen(listen: str, option: str, workers: int) -> None:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(f"{option} wants HOST:PORT, got {listen!r}", field=option)
    if workers > 1:
        raise ValidationError(f"{option} serves one process's metrics: use it with "
                              "--workers 1, or scrape /metrics with a token", field=option)


@token_app.command("create")
def create_cmd(
    role: str = typer.Option(..., "--role", help="reader, writer, approver or admin."),
    name: str = typer.Option("token", "--name", help="What the token is for."),
    email: str = typer.Option(None, "--email", help="Who holds it: required for writer, "
                              "approver and admin tokens (the actor of what they write)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a token; its secret is printed once and stored only as a hash."""
    with opened() as store, store.write() as conn:
        tok, secret = ledger_tokens.create(conn, role=role, name=name, email=email)
    if as_json:
        print_json({"token": secret, **tok.to_dict()})
    else:
        out.print(secret)


@token_app.command("list")
def list_cmd(as_json: bool = JSON_OPTION) -> None:
    """List tokens (never their secrets)."""
    with opened() as store, store.read() as conn:
        toks = ledger_tokens.list_tokens(conn)
    if as_json:
        print_json([t.to_dict() for t in toks])
        return
    for t in toks:
        state = "revoked" if t.revoked_at else "live"
        out.print(f"{t.id}  {t.role:<8}  {state:<7}  {t.name}")


@token_app.command("revoke")
def revoke_cmd(token_id: str = typer.Argument(...)) -> None:
    """Revoke a token by id."""
    with opened() as store, store.write() as conn:
        ledger_tokens.revoke(conn, token_id)
    out.print(f"revoked {token_id}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.add_typer(token_app, name="token")
