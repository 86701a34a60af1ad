"""The dashboard: server-rendered pages outside /api, a log-in page, and static files.

Every page needs a live token in the HttpOnly cookie :data:`auth.COOKIE`; without one it
redirects to ``/login``, where a token can be pasted or a one-time code from
``modelward login-url`` exchanged (``/login?code=…`` shows a button that posts it) for a
12-hour session token, which logging out revokes. The pages call the same domain functions
as the CLI and the API (see docs/dashboard.md)."""

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
    """The log-in form; with ``code``, a button that exchanges the one-time code (by a
    same-origin POST: opening a link never logs anybody in, so another site cannot log a
    visitor in as its own account)."""
    if code is not None:
        with store_of(request).read() as conn:
            who = login_codes.peek(conn, code)
        if who is None:
            return render(request, "login.html", 400, next=safe_next(next), code=None,
                          error=_UNUSABLE)
        return render(request, "login.html", next=safe_next(next), code=code, who=who,
                      error=None)
    return render(request, "login.html", next=safe_next(next), code=None, error=None)


_UNUSABLE = ("This log-in link is unknown, already used or expired. Ask for a new one with "
             "`modelward login-url`, or paste a token.")


async def _form(request: Request) -> dict[str, str]:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {k: v[0] for k, v in form.items()}


@router.post("/login/code", include_in_schema=False)
async def login_with_code(request: Request):
    """Exchange a one-time code (form field ``code``) for a 12-hour session cookie."""
    form = await _form(request)
    target = safe_next(form.get("next", "/"))
    with store_of(request).write() as conn:
        got = login_codes.redeem(conn, form.get("code", ""))
    if got is None:
        return render(request, "login.html", 400, next=target, code=None, error=_UNUSABLE)
    token, secret = got
    return _logged_in(request, secret, token, target)


@router.post("/login", include_in_schema=False)
async def login_submit(request: Request):
    """A pasted token (form field ``token``), when live, opens a session: the cookie holds a
    new session token with its role and e-mail, never the pasted secret."""
    form = await _form(request)
    secret = form.get("token", "").strip()
    target = safe_next(form.get("next", "/"))
    with store_of(request).write() as conn:
        token = ledger_tokens.authenticate(conn, secret)
        session = login_codes.session_for(conn, token) if token is not None else None
    if session is None:
        return render(request, "login.html", 401, next=target, code=None,
                      error="That token is unknown, revoked or expired.")
    return _logged_in(request, session[1], session[0], target)


@router.post("/logout", include_in_schema=False)
def logout(request: Request):
    """Revoke the session the cookie holds (server-side: a copied cookie stops working),
    then forget the cookie."""
    secret = request.cookies.get(COOKIE)
    if secret:
        with store_of(request).write() as conn:
            token = ledger_tokens.authenticate(conn, secret)
            if token is not None and login_codes.is_session(token):
                ledger_tokens.revoke(conn, token.id)
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
