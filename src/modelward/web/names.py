"""Names in URLs: experiments (and aliases) may hold ``/``, spaces, ``%``, any Unicode and
dots, so a page links to them percent-encoded as one path segment, and a route takes them
with a ``{name:path}`` converter declared after its sub-routes.

The server sees the decoded path, where ``a%2Fcheck`` and ``a/check`` look alike;
:func:`encoded_tail` reads the raw path to tell the check of experiment ``a`` from the
experiment named ``a/check``. A name that is all dots (``.``, ``..``) cannot be a path
segment at all (browsers resolve it, even percent-encoded), so :func:`experiment_href`
links to it through the list page's ``?name=`` instead."""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

from fastapi import Request


def segment(name: str) -> str:
    """``name`` as one percent-encoded path segment (``/`` as ``%2F``)."""
    return quote(str(name), safe="")


def experiment_href(name: str) -> str:
    """The dashboard page of experiment ``name``."""
    if set(str(name)) <= {"."}:
        return f"/experiments?name={segment(name)}"
    return f"/experiments/{segment(name)}"


def encoded_tail(request: Request, name: str, tail: str) -> str | None:
    """When a sub-route ``…/{name:path}/TAIL`` matched a request whose last ``/TAIL`` was
    sent percent-encoded (``NAME%2FTAIL``), the whole name (``NAME/TAIL``) the client meant;
    None when the request really asked for the sub-route."""
    raw = request.scope.get("raw_path")
    if not raw:
        return None
    last = raw.split(b"?", 1)[0].rsplit(b"/", 1)[-1]
    if unquote_to_bytes(last) == tail.encode():
        return None
    return f"{name}/{tail}"
