"""The FastAPI application: ``create_app()`` serves the API, OTLP ingest and the dashboard."""

from __future__ import annotations

from fastapi import FastAPI

from .._version import __version__
from ..ledger.engine import Store
from ..settings import Settings
from . import dashboard, errors, otlp
from .api import router as api_router


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    if store is None:
        store = Store(settings)
        store.ensure_schema(create=False)
    app = FastAPI(
        title="modelward",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
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

    app.include_router(api_router, prefix="/api/v1")
    app.include_router(otlp.router)
    app.include_router(dashboard.router)
    return app
