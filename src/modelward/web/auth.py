"""Bearer-token auth: every route but /healthz needs a live token whose role the route allows.

Roles: ``reader`` (read everything), ``writer`` (record and register), ``approver``
(approve promotions), ``admin`` (everything). Writer, approver and admin tokens carry the
e-mail of the person they act for: a route that writes refuses a token without one (one
made before e-mails were required), and the actor of every write is that e-mail. The
dashboard keeps the token in an HttpOnly cookie set by its log-in page; the cookie is
accepted on the dashboard's paths only (the API and OTLP ingest take a Bearer token)."""

from __future__ import annotations

from fastapi import Request
from starlette.requests import cookie_parser

from ..ledger import tokens as ledger_tokens
from .errors import AuthError

READ = ("reader", "writer", "approver", "admin")
WRITE = ("writer", "admin")
APPROVE = ("approver", "admin")
ADMIN = ("admin",)
COOKIE = "modelward_token"


# Paths that take a Bearer token only: the dashboard's cookie is not accepted there, so a
# link or form elsewhere cannot use a logged-in browser against the API.
BEARER_ONLY = ("/api/", "/v1/")


def token_secret_of(headers, path: str) -> str | None:
    """The secret a request presents: its Bearer token, else (on a dashboard path) its
    cookie. ValueError for a malformed Authorization header."""
    header = headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ValueError("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    if path.startswith(BEARER_ONLY):
        return None
    return cookie_parser(headers.get("cookie", "")).get(COOKIE) or None


def token_secret(request: Request) -> str | None:
    try:
        return token_secret_of(request.headers, request.url.path)
    except ValueError as exc:
        raise AuthError(401, "unauthorized", str(exc)) from None


def require(*roles: str):
    """A FastAPI dependency admitting tokens whose role is in ``roles``."""
    allowed = set(roles) | {"admin"}

    def dependency(request: Request) -> ledger_tokens.Token:
        # the limits middleware authenticated a request with a body already
        token = request.scope.get("state", {}).get("authenticated")
        if token is None:
            secret = token_secret(request)
            if not secret:
                raise AuthError(401, "unauthorized", "a Bearer token is required")
            with request.app.state.store.read() as conn:
                token = ledger_tokens.authenticate(conn, secret)
        if token is None:
            raise AuthError(401, "unauthorized", "the token is unknown, revoked or expired")
        if token.role not in allowed:
            raise AuthError(403, "forbidden",
                            f"role {token.role!r} may not do this; needs one of "
                            + ", ".join(sorted(allowed)))
        if "reader" not in allowed and not token.email:
            raise AuthError(403, "forbidden",
                            f"token {token.name!r} carries no e-mail, so nothing it writes "
                            "could name who did it; create one with `modelward token create "
                            f"--role {token.role} --email you@example.com`")
        request.state.token = token
        return token

    dependency.roles = tuple(sorted(allowed))  # read by the auth-matrix test and the docs
    return dependency
