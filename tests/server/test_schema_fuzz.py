"""Schemathesis over the server's own OpenAPI schema: no generated request gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from server.background import BackgroundServer
from server.settings import Settings


@pytest.fixture(scope="module")
def fuzz_server(served_root: Path) -> Iterator[BackgroundServer]:
    # a small profile bound keeps generated ?runs= values cheap; a small body limit exercises 413
    with BackgroundServer(
        Settings(bundle_dir=served_root, pool_size=1, max_profile_runs=5, max_request_bytes=1 << 16)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzz_server: BackgroundServer) -> schemathesis.BaseSchema:
    # bodies of application/x-npy are generated as raw bytes (mostly not .npy: the server must say 400)
    schemathesis.serializer.alias("application/x-npy", "application/octet-stream")
    return schemathesis.openapi.from_url(fuzz_server.base_url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=[not_a_server_error], timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}"
