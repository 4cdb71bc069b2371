"""``/v1/models``: what is served (names, quantization, cut points, shapes) and per-segment profiles."""

from __future__ import annotations

import math
import socket
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from server.pool import ModelPool, QueueFullError
from server.problems import ERROR_RESPONSES, ApiError
from server.routes.deps import PoolDep, RegistryDep, SettingsDep
from server.schemas import ModelDetail, ModelSummary, SegmentSummary
from server.settings import Settings

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])
_DEFAULT_MAX_RUNS = Settings.model_fields["max_profile_runs"].default  # bound declared in the schema


def _summary(name: str, pool: ModelPool) -> dict[str, Any]:
    manifest = pool.manifest
    return {
        "name": name,
        "model": manifest.model,
        "quant": manifest.quant,
        "num_segments": manifest.num_segments,
        "cut_layers": manifest.cut_layers,
        "input": manifest.input,
        "output": manifest.output,
    }


@router.get("", response_model=list[ModelSummary], responses=ERROR_RESPONSES["auth"])
async def list_models(registry: RegistryDep) -> list[dict[str, Any]]:
    """Every served model: name, quantization, cut points, input and output shapes."""
    return [_summary(name, pool) for name, pool in sorted(registry.pools.items())]


@router.get("/{name}", response_model=ModelDetail, responses=ERROR_RESPONSES["model"])
async def get_model(pool: PoolDep) -> dict[str, Any]:
    """One model with its segments (boundary tensors with their dtypes and int8 quantization)."""
    segments = [
        SegmentSummary.model_validate(seg.model_dump(exclude={"file", "sha256"}))
        for seg in pool.manifest.segments
    ]
    return {
        **_summary(pool.name, pool),
        "segments": segments,
        "has_whole_model": bool(pool.manifest.whole_file),
    }


@router.get("/{name}/profile", responses=ERROR_RESPONSES["model"] | {503: ERROR_RESPONSES["infer"][503]})
async def profile_model(
    pool: PoolDep,
    settings: SettingsDep,
    runs: Annotated[
        int,
        Query(
            description="Timed runs per segment (after one warm-up), at most the server's max_profile_runs.",
            # declared for clients and fuzzers; checked below (400 bad_runs) against the configured maximum
            json_schema_extra={"minimum": 1, "maximum": _DEFAULT_MAX_RUNS},
        ),
    ] = 20,
) -> list[dict[str, Any]]:
    """Per-segment latency on this server, as profile rows (``models.profile_rows.ProfileRow`` fields).

    One row per segment and, when the bundle has the whole model, one with ``segment = -1``.
    Unmeasured fields (energy, power) are null.
    """
    if not 1 <= runs <= settings.max_profile_runs:
        raise ApiError(400, "bad_runs", f"runs must be in 1..{settings.max_profile_runs}, got {runs}")
    device = settings.device_name or f"cloud:{socket.gethostname()}"
    try:
        rows = await pool.profile(runs, device=device)
    except QueueFullError as exc:
        raise ApiError(503, "queue_full", str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    return [_json_safe(asdict(row)) for row in rows]


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: unmeasured floats become null."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
