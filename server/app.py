"""The FastAPI app factory of the cloud half.

``create_app(settings)`` builds the app; bundles are loaded in the lifespan handler (never at import), so
``uvicorn server.app:create_app --factory --workers N`` gives each worker its own interpreter pools,
configured from ``JOINTDNN_*`` environment variables. This process never imports TensorFlow: segments run
on LiteRT through :mod:`models.runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import multiprocess as prometheus_multiprocess

from server.metrics import Metrics, MetricsMiddleware, multiprocess_dir
from server.problems import install_error_handlers
from server.registry import ModelRegistry
from server.routes import infer, models, ops
from server.routes.deps import require_token
from server.settings import Settings
from server.workers import LoadBoard

__all__ = ["create_app"]

log = logging.getLogger("server")

API_DESCRIPTION = """Runs any contiguous range of a model's TFLite segment chain (the cloud half of a
mobile/cloud split). Tensors travel as NumPy `.npy` bytes (`application/x-npy`), optionally gzip- or
zstd-compressed; JSON is used only for metadata. When a token is configured every endpoint but
`/healthz` needs `Authorization: Bearer <token>`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to the ``JOINTDNN_*`` environment."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry: ModelRegistry | None = getattr(app.state, "registry", None)
        owned = registry is None  # a Ray Serve replica loads the models in its constructor instead
        if registry is None:
            registry = app.state.registry = ModelRegistry.load(settings)
        log.info("serving %d model(s) from %s: %s", len(registry.pools), settings.bundle_dir,
                 ", ".join(registry.pools) or "none")  # fmt: skip
        publisher = None
        if settings.workers_dir is not None:
            pools = registry.pools
            board = app.state.load_board = LoadBoard(settings.workers_dir)
            publisher = asyncio.create_task(board.run(lambda: {name: p.load() for name, p in pools.items()}))
        try:
            yield
        finally:
            if publisher is not None:
                publisher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await publisher
            if multiprocess_dir() is not None:
                prometheus_multiprocess.mark_process_dead(os.getpid())  # its in-flight gauge stops counting
            if owned:
                registry.close()

    app = FastAPI(
        title="JointDNN cloud server",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # served below, behind the token like every endpoint but /healthz
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.load_board = None
    install_error_handlers(app, lambda code: metrics.errors.labels(code).inc())
    app.include_router(ops.router)
    app.include_router(models.router, dependencies=[Depends(require_token)])
    app.include_router(infer.router)  # checks the token itself (hot path, no dependency injection)
    _add_docs(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(infer.InferEndpoint, state=app.state)  # outermost: the hot path skips the rest
    return app


def _add_docs(app: FastAPI) -> None:
    """``/openapi.json`` and ``/docs`` (Swagger UI), which need the token too when one is set."""
    guarded = [Depends(require_token)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
    async def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guarded)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")
