"""What every dashboard page shares: the router, the Jinja2 environment, the cookie log-in
check and the one error page.

A page is a plain function decorated with :func:`page`; it takes ``request`` (and its path
and query parameters) and returns a response or ``(template, context)``. The decorator
sends a visitor without a live token cookie to the log-in page and turns a
``ModelwardError`` into an error page with the status the API would give."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from ...display import inert, plural, short_digest
from ...errors import ModelwardError
from ...ledger import tokens as ledger_tokens
from ...timefmt import iso
from ..auth import COOKIE
from ..errors import status_of
from ..store import store_of  # noqa: F401  (every page imports it from here)

WEB = Path(__file__).resolve().parent.parent
router = APIRouter(include_in_schema=False)


def _inert(value):
    """Every ``{{ value }}`` a template prints: ledger text shows its control characters and
    bidi overrides as visible escapes (HTML escaping alone lets U+202E reorder a cell);
    markup a page built itself (``Markup``) is left as it is."""
    return inert(value, lines=True) if isinstance(value, str) and not isinstance(
        value, Markup) else value


env = jinja2.Environment(loader=jinja2.FileSystemLoader(WEB / "templates"),
                         autoescape=True, trim_blocks=True, lstrip_blocks=True,
                         finalize=_inert)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAV = (("/", "Findings"), ("/aliases", "Aliases"), ("/decisions", "Decisions"),
       ("/experiments", "Experiments"), ("/coverage", "Eval coverage"),
       ("/fingerprints", "Fingerprints"), ("/promotions", "Promotions"))


def short(digest: str | None) -> str:
    """A page marks what is not there with an em dash."""
    return short_digest(digest, missing="—")


def when(value) -> str:
    """An int microsecond time (or an ISO string) as ``2026-03-01 12:00:00Z``."""
    if value is None:
        return "—"
    text = iso(value) if isinstance(value, int) else str(value)
    return text.replace("T", " ").split(".")[0].rstrip("Z") + "Z"


env.filters.update(short=short, when=when, plural=plural, q=lambda s: quote(str(s), safe=""))
env.globals.update(NAV=NAV)


def viewer(request: Request) -> ledger_tokens.Token | None:
    """The live token in the dashboard cookie, or None."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    with request.app.state.store.read() as conn:  # the cookie only: nothing to check yet
        return ledger_tokens.authenticate(conn, secret)


def render(request: Request, template: str, status: int = 200, /, **ctx) -> HTMLResponse:
    token = getattr(request.state, "token", None)
    html = env.get_template(template).render(request=request, token=token,
                                             path=request.url.path, **ctx)
    return HTMLResponse(html, status_code=status)


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect (``//evil``, ``https://…``)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def page(path: str, methods: tuple[str, ...] = ("GET",)):
    """Register a dashboard page at ``path`` (cookie log-in required)."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(**kwargs) -> Response:
            request: Request = kwargs["request"]
            token = viewer(request)
            if token is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query
                                             else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            request.state.token = token
            try:
                result = fn(**kwargs)
            except ModelwardError as exc:
                return render(request, "error.html", status_of(exc), error=exc.to_dict())
            if isinstance(result, Response):
                return result
            template, ctx = result
            return render(request, template, **ctx)

        router.add_api_route(path, wrapper, methods=list(methods),
                             response_class=HTMLResponse)
        return fn
    return decorate


def labels(conn, digests) -> dict[str, str]:
    """``name@version`` (or the hosted id) of each registered digest; the short digest
    otherwise."""
    from ...ledger.artifacts import find_many

    found = find_many(conn, digests)
    out = {}
    for d in {d for d in digests if d}:
        a = found.get(d)
        out[d] = (a.hosted_id or (f"{a.name}@{a.version}" if a.version else a.name)) \
            if a else short(d)
    return out
