"""One JSON error envelope for every route::

    {"error": {"code": "validation_error", "message": "…", "hint": "…", "field": "…"}}
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ConfigError,
    ConflictError,
    ForbiddenError,
    IntegrityError,
    ModelwardError,
    NotFoundError,
    StorageError,
    ValidationError,
)

_STATUS = [
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ValidationError, 422),
    (ConfigError, 400),
    (ConflictError, 409),
    (IntegrityError, 409),
    (StorageError, 503),
]


def envelope(status: int, code: str, message: str, **extra) -> JSONResponse:
    body = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse({"error": body}, status_code=status)


def status_of(exc: ModelwardError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def install(app: FastAPI) -> None:
    @app.exception_handler(ModelwardError)
    async def _modelward(_request: Request, exc: ModelwardError):
        return JSONResponse({"error": exc.to_dict()}, status_code=status_of(exc))

    @app.exception_handler(AuthError)
    async def _auth(_request: Request, exc: AuthError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        resp = envelope(exc.status, exc.code, exc.message)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
            problems.append({"field": loc or None, "message": e.get("msg", "invalid")})
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        return envelope(422, "validation_error",
                        f"{first['field']}: {first['message']}" if first["field"] else first["message"],
                        field=first["field"], problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large"}.get(exc.status_code, "http_error")
        return envelope(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):  # pragma: no cover - last resort
        return envelope(500, "internal_error", f"unexpected {type(exc).__name__}; see the server log")
