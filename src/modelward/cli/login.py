"""``modelward login-url``: a one-time link that logs a browser into the dashboard."""

from __future__ import annotations

import typer

from ..errors import ValidationError
from ..ledger import login_codes
from ..ledger.people import check_email
from ..timefmt import iso, parse_duration
from ._common import JSON_OPTION, opened, out, print_json


def login_link(store, base_url: str, *, role: str = "reader", email: str | None = None,
               ttl: str | int = "10m") -> tuple[str, int]:
    """(URL, expires_at) of a new one-time log-in code for ``base_url``'s dashboard."""
    if not base_url.startswith(("http://", "https://")):
        raise ValidationError(f"not an http(s) URL: {base_url!r}", field="--url",
                              hint="e.g. --url http://127.0.0.1:8765")
    email = check_email(email, "--email") if email else None
    with store.write() as conn:
        code, expires = login_codes.create(conn, role=role, email=email,
                                           ttl=parse_duration(ttl, field="--ttl"))
    return f"{base_url.rstrip('/')}/login?code={code}", expires


def login_url_cmd(
    url: str = typer.Option("http://127.0.0.1:8765", "--url",
                            help="Where `modelward serve` listens."),
    role: str = typer.Option("reader", "--role", help="reader, writer, approver or admin."),
    email: str = typer.Option(None, "--email", help="Who logs in: recorded when they open "
                              "eval evidence and approve."),
    ttl: str = typer.Option("10m", "--ttl", help="How long the link stays valid (max 24h)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a one-time dashboard log-in URL (single use; exchanged for a 12-hour session)."""
    with opened() as store:
        link, expires = login_link(store, url, role=role, email=email, ttl=ttl)
    if as_json:
        print_json({"url": link, "expires_at": iso(expires), "role": role, "email": email})
    else:
        out.print(link, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("login-url")(login_url_cmd)
