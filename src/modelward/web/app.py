"""The FastAPI application: ``create_app()`` serves the API, OTLP ingest and the dashboard;
``app_from_environment()`` is the factory ``modelward serve --workers N`` hands uvicorn, so
every worker process builds its own app (and its own database connections)."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request

from .._version import __version__
from ..ledger.engine import Store
from ..settings import Settings
from . import dashboard, errors, metrics, otlp
from .api import router as api_router
from .api._common import JSON
from .auth import READ, require
from .limits import LimitsMiddleware


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    if store is None:
        store = Store(settings)
        store.ensure_schema(create=False)
    # No interactive docs page (FastAPI's loads its scripts from a CDN) and no public schema:
    # the OpenAPI document is a route like any other, for a live token.
    app = FastAPI(title="modelward", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.state.store = store
    app.state.settings = settings
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        """Liveness: the only route that needs no token. ``otlp`` counts the spans
        ``POST /v1/traces`` received since start, and those it rejected."""
        with store.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"ok": True, "version": __version__, "otlp": dict(otlp.counts(app))}

    @app.get("/api/v1/openapi.json", tags=["health"], dependencies=[Depends(require(*READ))])
    def openapi_document(request: Request) -> dict:
        """The OpenAPI 3 document of this API (any live token)."""
        return JSON(request.app.openapi())

    app.include_router(api_router, prefix="/api/v1")
    app.include_router(otlp.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    app.add_middleware(LimitsMiddleware, fastapi_app=app)
    return app


def app_from_environment() -> FastAPI:
    """The app over the settings of the environment (``MODELWARD_*``, modelward.toml):
    what each worker of ``modelward serve --workers N`` imports."""
    return create_app(Settings())
