"""The ledger a request works on: one lookup for the API routes and the dashboard pages."""

from __future__ import annotations

from fastapi import Request

from ..errors import ValidationError
from ..ledger.engine import Store


def store_of(request: Request) -> Store:
    """The ledger, once the request's path and query hold no NUL byte: PostgreSQL can
    neither store nor compare one, and the request would fail as a storage error (503)
    instead of a 422 naming the parameter. Every route and page calls this after auth."""
    for name, value in (*request.query_params.multi_items(), *request.path_params.items()):
        if "\x00" in str(value):
            raise ValidationError("holds a NUL byte", field=name)
    return request.app.state.store
