"""Pieces every API router shares: the store, query-time parsing, batch bodies."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import AfterValidator

from ...errors import ValidationError
from ...ledger.tokens import Token
from ...timefmt import parse_when
from ..errors import AuthError
from ..store import store_of  # noqa: F401  (every router imports it from here)

MAX_BATCH = 10_000  # items per POST: bounds one request's memory and one transaction's time


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("holds a NUL byte")
    return value


# A string field of a request body. PostgreSQL can neither store nor compare a NUL byte: one
# would fail as a storage error (503) instead of a 422 naming the field.
Text = Annotated[str, AfterValidator(_no_nul)]


def check_no_nul(**fields: str | list[str] | None) -> None:
    """The same rule for form fields (multipart bodies are not pydantic models)."""
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None and "\x00" in item:
                raise ValidationError("holds a NUL byte", field=name)


class JSON(Response):
    """orjson-rendered JSON: numpy scalars and non-finite floats (as null) never become a
    500, and large reports serialise several times faster than the stdlib encoder."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY
                            | orjson.OPT_NON_STR_KEYS)


def token_of(request: Request) -> Token:
    """The token the auth dependency admitted (set on request.state)."""
    return request.state.token


def query_time(value: str | None, field: str, now: int | None = None) -> int | None:
    """A ``since``, ``until`` or ``at`` query parameter: an ISO 8601 time or a duration back
    from now (``7d``), through :func:`modelward.timefmt.parse_when`; None when absent."""
    return parse_when(value, now=now, field=field)


class BatchError(ValidationError):
    """Every bad item of a batch, each named by its index; nothing was written."""

    def __init__(self, noun: str, problems: list[ValidationError]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more bad items)" if len(problems) > 1 else ""
        super().__init__(f"{first.detail}{more}; nothing was written", field=first.field,
                         hint=f"fix the {noun} named and send the batch again")
        self.problems = problems


class ItemError(ValidationError):
    """A problem with item ``index`` of a batch; its field is a path (``decisions[3].at``)."""

    def __init__(self, exc: ValidationError, key: str, index: int) -> None:
        where = f"{key}[{index}]"
        super().__init__(exc.detail, field=f"{where}.{exc.field}" if exc.field else where,
                         hint=exc.hint)
        self.index = index

    def to_dict(self) -> dict:
        return {**super().to_dict(), "index": self.index}


def read_batch(raw: bytes, key: str) -> list:
    """A JSON array, or an object ``{key: [...]}``, parsed with orjson (no pydantic models:
    the domain's normalize is the validation)."""
    if not raw.strip():
        raise ValidationError(f"the body is empty; send a JSON array of {key}", field=key)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not valid JSON ({exc})", field="body") from None
    if isinstance(body, dict) and set(body) == {key}:
        body = body[key]
    if not isinstance(body, list):
        raise ValidationError(f"expected a JSON array of {key}, or {{\"{key}\": [...]}}",
                              field=key)
    if not body:
        raise ValidationError(f"the batch holds no {key}", field=key)
    if len(body) > MAX_BATCH:
        raise ValidationError(f"{len(body)} {key} in one batch; send at most {MAX_BATCH}",
                              field=key, hint="split the batch")
    return body


def batch_schema(item: dict, key: str) -> dict:
    """The OpenAPI requestBody of a batch route (the route reads the raw body itself)."""
    array = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_BATCH}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "anyOf": [array, {"type": "object", "required": [key], "properties": {key: array},
                          "additionalProperties": False}]}}}}}


def acting_as(request: Request, given: str | None, field: str) -> str:
    """Who is acting: always the token holder's e-mail. A body or query naming somebody
    else is refused (403); a token with no e-mail cannot act for anybody (403)."""
    from ...ledger.people import check_email

    token = request.state.token
    if not token.email:
        raise AuthError(403, "forbidden", f"token {token.name!r} carries no e-mail, so it "
                        "cannot act for anybody; create one with `modelward token create "
                        f"--role {token.role} --email you@example.com`")
    email = check_email(token.email, "token")
    if given is not None and given.strip().lower() != email:
        raise AuthError(403, "forbidden", f"this token acts for {email}; it cannot act as "
                        f"{given!r} ({field})")
    return email
