"""The dashboard: server-rendered pages outside /api, a log-in page, and static files.

Every page needs a live token in the HttpOnly cookie :data:`auth.COOKIE`; without one it
redirects to ``/login``, where a token can be pasted or a one-time code from
``modelward login-url`` exchanged (``/login?code=…``) for a 12-hour session token. The
pages call the same domain functions as the CLI and the API (see docs/dashboard.md)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from ..ledger import login_codes
from ..ledger import tokens as ledger_tokens
from ..timefmt import now_us
from .auth import COOKIE
from .pages import (  # noqa: F401
    _base,
    aliases,
    coverage,
    decisions,
    experiments,
    findings,
    fingerprints,
    promotions,  # noqa: F401
)
from .pages._base import render, router, safe_next, store_of

STATIC = _base.WEB / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def _logged_in(request: Request, secret: str, token: ledger_tokens.Token,
               target: str) -> Response:
    resp = RedirectResponse(safe_next(target), 303)
    left = (token.expires_at - now_us()) // 1_000_000 if token.expires_at else None
    # Lax: the cookie rides top-level navigations (a log-in link opened from a terminal)
    # but never a cross-site POST, so another site cannot record an open in your name.
    resp.set_cookie(COOKIE, secret, max_age=left, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https", path="/")
    return resp


@router.get("/login", include_in_schema=False)
def login_page(request: Request, code: str | None = None, next: str | None = None):
    """The log-in form; with ``code``, exchange a one-time code for a session cookie."""
    if code is not None:
        with store_of(request).write() as conn:
            got = login_codes.redeem(conn, code)
        if got is None:
            return render(request, "login.html", 400, next=safe_next(next),
                          error="This log-in link is unknown, already used or expired. "
                                "Ask for a new one with `modelward login-url`, or paste a "
                                "token.")
        token, secret = got
        return _logged_in(request, secret, token, next or "/")
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", include_in_schema=False)
async def login_submit(request: Request):
    """A pasted token (form field ``token``) becomes the session cookie when it is live."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    with store_of(request).read() as conn:
        token = ledger_tokens.authenticate(conn, secret)
    if token is None:
        return render(request, "login.html", 401, next=target,
                      error="That token is unknown, revoked or expired.")
    return _logged_in(request, secret, token, target)


@router.post("/logout", include_in_schema=False)
def logout(request: Request):
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/static/{name}", include_in_schema=False)
def static(name: str):
    """The dashboard's few static files (no build step: plain CSS and JS)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file() \
            or path.suffix not in STATIC_TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600"})
