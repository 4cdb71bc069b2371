"""Operations: ``/healthz`` (no auth), ``/v1/load`` (the planner's cloud-load input), ``/metrics``."""

from __future__ import annotations

import os
import sys
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from models.runtime import backend_name
from server.problems import ERROR_RESPONSES
from server.routes.deps import MetricsDep, RegistryDep, SettingsDep, require_token
from server.schemas import Health, LoadReport
from server.workers import LoadBoard, combine_loads

__all__ = ["router"]

router = APIRouter(tags=["ops"])

_METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {}}},
    **ERROR_RESPONSES["auth"],
}


@router.get("/healthz", response_model=Health)
async def healthz(registry: RegistryDep) -> Health:
    """Liveness and what loaded; never needs a token."""
    return Health(
        models=sorted(registry.pools),
        failed=registry.failed,
        backend=backend_name(),
        pid=os.getpid(),
        tensorflow_imported="tensorflow" in sys.modules,
    )


@router.get(
    "/v1/load",
    response_model=LoadReport,
    dependencies=[Depends(require_token)],
    responses=ERROR_RESPONSES["auth"],
)
async def load(request: Request, registry: RegistryDep, settings: SettingsDep) -> LoadReport:
    """In-flight and queued inferences and recent utilisation of the interpreter chains, over all workers."""
    per_model = {name: pool.load() for name, pool in sorted(registry.pools.items())}
    board: LoadBoard | None = request.app.state.load_board
    others = board.others() if board is not None else []
    if others:
        per_model = combine_loads([per_model, *others])
    chains = sum(entry["pool_size"] for entry in per_model.values())
    busy = sum(entry["utilization"] * entry["pool_size"] for entry in per_model.values())
    return LoadReport.model_validate(
        {
            "in_flight": sum(entry["in_flight"] for entry in per_model.values()),
            "queued": sum(entry["queued"] for entry in per_model.values()),
            "pool_size": chains,
            "utilization": busy / chains if chains else 0.0,
            "window_s": settings.load_window_s,
            "pid": os.getpid(),
            "models": per_model,
            "workers": 1 + len(others),
            "served": sum(entry["served"] for entry in per_model.values()),
        }
    )


@router.get(
    "/metrics",
    dependencies=[Depends(require_token)],
    responses=_METRICS_RESPONSES,
    response_class=Response,
)
async def metrics(registry: MetricsDep) -> Response:
    """Prometheus text: request counts and latency histograms, inference compute/queue time, errors."""
    return Response(registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
