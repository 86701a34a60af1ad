"""Limits before work: a pure ASGI middleware in front of every route.

Before the application reads a single body byte it

1. refuses a state-changing dashboard request (the API takes no cookie) unless its
   ``Origin`` (or, without one, its ``Referer``) is this server's own origin or one of
   ``allowed_origins`` (403): a page on another site (or another port) cannot post the
   dashboard's forms with the visitor's cookie;
2. authenticates a request that carries a body or changes state (a live token, and a role
   the route admits): 401/403 with the body unread;
3. finds the body limit the route declares (:func:`body_limit`; ``max_body`` otherwise)
   and refuses a ``Content-Length`` above it with 413;

and then counts the body as it streams (chunked bodies included: 413 the moment the limit
is passed) and, on a route that accepts it, decompresses ``Content-Encoding: gzip`` in
bounded pieces (output size and ratio limited: 413). Every response gets the security
headers of :data:`SECURITY_HEADERS` and, unless it chose otherwise, ``Cache-Control:
no-store``."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException

from ..ledger import tokens as ledger_tokens
from .auth import BEARER_ONLY, token_secret_of
from .errors import envelope

SAFE = frozenset(("GET", "HEAD", "OPTIONS"))
# Routes anybody may call: liveness, logging in and out, the dashboard's static files.
PUBLIC = ("/healthz", "/login", "/login/code", "/logout", "/static/")
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
PIECE = 64 * 1024  # most decompressed bytes produced per step
RATIO_FLOOR = 1 << 20  # the ratio is judged once the output passes this


def body_limit(setting: str, *, gzip: bool = False):
    """Declare a route's body limit as the name of the setting holding it (``max_upload``);
    ``gzip=True`` lets it receive ``Content-Encoding: gzip`` bodies, which the middleware
    decompresses (bounded) before the route sees them."""
    def decorate(fn):
        fn.body_limit, fn.accepts_gzip = setting, gzip
        return fn
    return decorate


class TooLarge(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BadEncoding(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def _public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


@dataclass(frozen=True)
class RouteRule:
    """What the middleware needs of one route: where it answers, its body limit (a setting
    name), whether it takes gzip, and the roles it admits (None: no role check)."""

    path: re.Pattern
    methods: frozenset[str]
    limit: str
    gzip: bool
    roles: tuple[str, ...] | None


def route_rules(app) -> list[RouteRule]:
    """Every route of ``app`` as a :class:`RouteRule`, in routing order."""
    rules = []
    for ctx in iter_route_contexts(app.routes):
        regex, methods = getattr(ctx, "path_regex", None), getattr(ctx, "methods", None)
        if regex is None or methods is None:
            continue
        endpoint = getattr(ctx, "endpoint", None)
        rules.append(RouteRule(regex, frozenset(methods), getattr(endpoint, "body_limit",
                                                                  "max_body"),
                               getattr(endpoint, "accepts_gzip", False),
                               _roles_of(getattr(ctx, "dependant", None))))
    return rules


def _rule_for(rules: list[RouteRule], method: str, path: str) -> RouteRule | None:
    for rule in rules:
        if method in rule.methods and rule.path.match(path):
            return rule
    return None


def _roles_of(dependant) -> tuple[str, ...] | None:
    stack = list(dependant.dependencies) if dependant else []
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "roles", None)
        if roles:
            return roles
        stack.extend(dep.dependencies)
    return None


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _origin_of(value: str) -> str | None:
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def same_origin(headers: dict[str, str], scope, allowed: list[str]) -> bool:
    """Does the request come from a page of this server (or of an allowed origin)? The
    ``Origin`` header decides; a browser that sends none sends ``Referer``; with neither
    the request is refused (browsers send Origin on every cross-origin POST)."""
    claimed = headers.get("origin")
    if claimed is None or claimed == "null":
        referer = headers.get("referer")
        claimed = _origin_of(referer) if referer else None
    else:
        claimed = _origin_of(claimed)
    if claimed is None:
        return False
    host = headers.get("host", "").lower()
    scheme = scope.get("scheme", "http")
    own = {f"{scheme}://{host}"}
    if host:  # behind a TLS-terminating proxy the browser's scheme is not ours
        own.add(f"{'https' if scheme == 'http' else 'http'}://{host}")
    return claimed in own or claimed in {o.rstrip("/").lower() for o in allowed or ()}


class LimitsMiddleware:
    def __init__(self, app, fastapi_app) -> None:
        self.app, self.fastapi_app = app, fastapi_app
        self._rules: list[RouteRule] | None = None  # built at the first request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _v in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            refusal, body = await self._admit(scope, receive)
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
                return
            await self.app(scope, body, send_with_headers)
        except (TooLarge, BadEncoding) as exc:  # raised while the body streamed
            if started:
                raise
            code = "payload_too_large" if exc.status_code == 413 else "bad_request"
            await envelope(exc.status_code, code, exc.detail)(scope, receive,
                                                             send_with_headers)

    async def _admit(self, scope, receive):
        """(None, the ``receive`` the route reads its body through) to go on, or (the
        response that refuses, None)."""
        settings = self.fastapi_app.state.settings
        headers, method, path = _headers(scope), scope["method"], scope["path"]
        if self._rules is None:
            self._rules = route_rules(self.fastapi_app)
        route = _rule_for(self._rules, method, path)
        limit_name = route.limit if route else "max_body"
        limit = getattr(settings, limit_name)
        gzip_ok = route.gzip if route else False
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            return envelope(400, "bad_request", "Content-Length is not a number"), None
        has_body = (declared not in (None, "0")) or "transfer-encoding" in headers
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        # The API takes Bearer tokens only (no cookie to ride), so the check concerns the
        # dashboard: its forms, log-in and log-out.
        if method not in SAFE and not bearer and not path.startswith(BEARER_ONLY) \
                and not same_origin(headers, scope, settings.allowed_origins):
            return envelope(403, "cross_origin",
                            "a state-changing request by cookie must come from this "
                            "server's own pages (Origin/Referer)",
                            hint="API clients send 'Authorization: Bearer <token>'; behind a "
                            "proxy that rewrites Host, list the public origin in "
                            "allowed_origins"), None
        if route is not None and not _public(path) and (has_body or method not in SAFE):
            refusal = await self._authenticate(scope, headers, route)
            if refusal is not None:
                return refusal, None
        if declared is not None and int(declared) > limit:
            return envelope(413, "payload_too_large",
                            f"the body is {int(declared)} bytes; this route takes at most "
                            f"{limit} ({limit_name})", hint=f"raise {limit_name} or send "
                            "less per request"), None
        body = _counting(receive, limit, limit_name)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding and encoding != "identity" and gzip_ok:
            if encoding != "gzip":
                return envelope(415, "unsupported_media_type",
                                f"unsupported Content-Encoding {encoding!r}",
                                hint="send gzip"), None
            scope["headers"] = [(k, v) for k, v in scope["headers"]
                                if k.lower() not in (b"content-encoding", b"content-length")]
            body = _gunzip(body, settings.max_otlp_decompressed,
                           settings.max_decompression_ratio)
        return None, body

    async def _authenticate(self, scope, headers, route):
        try:
            secret = token_secret_of(headers, scope["path"])
        except ValueError as exc:
            return envelope(401, "unauthorized", str(exc))
        store = self.fastapi_app.state.store
        token = None
        if secret:
            def lookup():
                with store.read() as conn:
                    return ledger_tokens.authenticate(conn, secret)
            token = await anyio.to_thread.run_sync(lookup)
        if token is None:
            message = ("the token is unknown, revoked or expired" if secret
                       else "a Bearer token is required")
            resp = envelope(401, "unauthorized", message)
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        roles = route.roles
        if roles and token.role not in roles:
            return envelope(403, "forbidden", f"role {token.role!r} may not do this; needs "
                            "one of " + ", ".join(sorted(roles)))
        scope.setdefault("state", {})["authenticated"] = token
        return None


def _counting(receive, limit: int, limit_name: str):
    """The ASGI ``receive`` of this request, counting body bytes against ``limit``."""
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(f"the body passed {limit} bytes, the most this route takes "
                               f"({limit_name})")
        return message
    return counted


def _gunzip(inner, max_out: int, ratio: int):
    """Wrap a counting receive: gzip in, at most ``PIECE`` decompressed bytes per step out,
    refused past ``max_out`` bytes or ``ratio`` times the bytes received."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    state = {"in": 0, "out": 0, "pending": b"", "done": False}

    def step(data: bytes) -> bytes:
        try:
            out = inflate.decompress(data, PIECE)
        except zlib.error as exc:
            raise BadEncoding(f"the gzip body does not decompress ({exc})") from None
        state["pending"] = inflate.unconsumed_tail
        state["out"] += len(out)
        if state["out"] > max_out:
            raise TooLarge(f"the gzip body decompresses to more than {max_out} bytes "
                           "(max_otlp_decompressed)")
        if state["out"] > RATIO_FLOOR and state["out"] > ratio * state["in"]:
            raise TooLarge(f"the gzip body decompresses more than {ratio} times its size "
                           "(max_decompression_ratio): refused as a decompression bomb")
        if inflate.unused_data:
            raise BadEncoding("data after the end of the gzip stream")
        return out

    async def inflated():
        while True:
            if state["pending"]:
                out = step(state["pending"])
                more = bool(state["pending"]) or not state["done"]
                if out or not more:
                    return _finish(out, more)
                continue
            if state["done"]:
                return _finish(b"", False)
            message = await inner()
            if message["type"] != "http.request":
                return message
            data = message.get("body", b"")
            state["in"] += len(data)
            state["done"] = not message.get("more_body", False)
            out = step(data) if data else b""
            more = bool(state["pending"]) or not state["done"]
            if out or not more:
                return _finish(out, more)

    def _finish(out: bytes, more: bool) -> dict:
        if not more and not inflate.eof:
            raise BadEncoding("the gzip body ends before its stream does")
        return {"type": "http.request", "body": out, "more_body": more}
    return inflated
