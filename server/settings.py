"""Server settings, read from ``JOINTDNN_*`` environment variables (pydantic-settings).

``uvicorn --workers N`` starts each worker with the import string ``server.app:create_app`` and no
arguments, so everything a worker needs must come from the environment; ``jointdnn serve`` sets it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _default_pool_size() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Settings(BaseSettings):
    """Everything the cloud server can be told; each field maps to ``JOINTDNN_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="JOINTDNN_", extra="ignore")

    bundle_dir: Path = Field(
        default=Path("bundles"),
        description="Directory of bundles (one per subdirectory), or a single bundle directory.",
    )
    token: SecretStr | None = Field(
        default=None, description="When set, every endpoint but /healthz needs `Authorization: Bearer`."
    )
    max_request_bytes: int = Field(
        default=64 << 20, ge=1024, description="Largest request body accepted, after decompression (bytes)."
    )
    interpreter_threads: int = Field(default=1, ge=1, le=64, description="LiteRT threads per interpreter.")
    pool_size: int = Field(
        default_factory=_default_pool_size,
        ge=1,
        le=64,
        description="Interpreter chains per model: how many inferences of one model run at once.",
    )
    max_queue: int = Field(
        default=64, ge=0, description="Requests per model allowed to wait for a free chain; more get 503."
    )
    max_profile_runs: int = Field(default=1000, ge=1, description="Upper bound of ?runs= on /profile.")
    load_window_s: float = Field(default=10.0, gt=0, description="Window of /v1/load's utilisation (s).")
    device_name: str = Field(
        default="", description="`device` column of profile rows (default cloud:<host>)."
    )
    batching: bool = Field(
        default=False,
        description="Run concurrent requests for the same segment range as one batch (dynamic batching).",
    )
    batch_window_ms: float = Field(
        default=1.0, ge=0, le=2.0, description="How long a request waits for others to batch with (ms)."
    )
    max_batch: int = Field(default=16, ge=1, le=256, description="Most requests in one batch.")
    workers_dir: Path | None = Field(
        default=None,
        description="Directory the workers of `jointdnn serve --workers N` share their load through "
        "(set by the command; /v1/load then sums over all workers).",
    )

    @field_validator("token", mode="after")
    @classmethod
    def _empty_token_means_none(cls, token: SecretStr | None) -> SecretStr | None:
        """``JOINTDNN_TOKEN=`` (empty) switches auth off instead of requiring an empty token."""
        return token if token is not None and token.get_secret_value() else None
