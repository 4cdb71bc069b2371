"""Dependencies shared by the routes: app state, bearer-token auth and model lookup."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.metrics import Metrics
from server.pool import ModelPool
from server.problems import ApiError
from server.registry import ModelRegistry
from server.settings import Settings

__all__ = [
    "MetricsDep",
    "PoolDep",
    "RegistryDep",
    "SettingsDep",
    "check_token",
    "lookup_pool",
    "require_token",
]

_bearer = HTTPBearer(
    auto_error=False, description="Needed on every endpoint but /healthz when a token is set."
)


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without a bearer token, 403 with a wrong one; a no-op when the server has no token."""
    check_token(settings, f"Bearer {credentials.credentials}" if credentials else None)


def check_token(settings: Settings, authorization: str | None) -> None:
    """The token check itself, on the raw ``Authorization`` header (the infer route calls it directly)."""
    if settings.token is None:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401,
            "unauthorized",
            "this server needs `Authorization: Bearer <token>` (set the client's token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.token.get_secret_value().encode()
    if not hmac.compare_digest(presented.strip().encode(), expected):
        raise ApiError(403, "forbidden", "the bearer token is not valid for this server")


def lookup_pool(registry: ModelRegistry, name: str) -> ModelPool:
    """The pool serving ``name``, or a 404 that lists what is served."""
    pool = registry.get(name)
    if pool is None:
        known = ", ".join(sorted(registry.pools)) or "none"
        raise ApiError(404, "unknown_model", f"no model named {name!r} is served here (served: {known})")
    return pool


async def _pool(
    registry: RegistryDep, name: Annotated[str, Path(description="Served model name.")]
) -> ModelPool:
    return lookup_pool(registry, name)


PoolDep = Annotated[ModelPool, Depends(_pool)]
