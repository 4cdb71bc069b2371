"""Models listing, profile rows, load, metrics, auth on and off, bundle discovery, settings from env."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from models.errors import BundleError, ServerRejectedError
from models.profile_rows import COLUMNS, WHOLE_MODEL_SEGMENT, ProfileRow
from server.background import BackgroundServer
from server.client import CloudClient, parse_server_timing
from server.registry import discover_bundles
from server.settings import Settings

from .conftest import MODELS, TOKEN


def test_models_lists_names_quantization_cuts_and_shapes(client: CloudClient) -> None:
    models = {entry["name"]: entry for entry in client.models()}
    assert sorted(models) == sorted(MODELS)
    fp32, int8 = models["small_cnn-fp32"], models["small_cnn-int8"]
    assert (fp32["quant"], int8["quant"]) == ("fp32", "int8")
    assert fp32["num_segments"] == len(fp32["cut_layers"]) + 1
    assert fp32["input"]["shape"] == [1, 32, 32, 3] and fp32["output"]["shape"] == [1, 10]
    detail = client.model("small_cnn-int8")
    assert len(detail["segments"]) == int8["num_segments"] and detail["has_whole_model"]
    assert detail["segments"][2]["input"]["dtype"] == "int8"
    assert detail["segments"][2]["input"]["quant"]["scale"] > 0


def test_profile_returns_profile_rows(client: CloudClient) -> None:
    rows = client.profile("small_cnn-fp32", runs=3)
    assert [row["segment"] for row in rows] == [*range(9), WHOLE_MODEL_SEGMENT]
    parsed = [ProfileRow(**row) for row in rows]  # exactly the CSV row fields
    assert set(rows[0]) == set(COLUMNS)
    for row in parsed:
        assert row.runs == 3 and row.runtime == "litert" and row.device.startswith("cloud:")
        assert 0 < row.latency_ms_p10 <= row.latency_ms_median <= row.latency_ms_p90
        assert math.isnan(row.energy_mj)
    assert parsed[0].in_bytes == 32 * 32 * 3 * 4 and parsed[-1].out_bytes == 10 * 4


def test_load_reports_in_flight_queue_and_utilisation(client: CloudClient) -> None:
    import numpy as np

    client.infer("small_cnn-fp32", np.zeros((1, 32, 32, 3), np.float32), from_segment=0)
    load = client.load()
    assert load["in_flight"] == 0 and load["queued"] == 0
    assert load["pool_size"] == 2 * len(MODELS)
    assert 0 < load["utilization"] <= 1
    assert load["models"]["small_cnn-fp32"]["recent_compute_ms_median"] > 0


def test_metrics_count_requests_errors_and_latency(client: CloudClient) -> None:
    with pytest.raises(ServerRejectedError):
        client.profile("small_cnn-fp32", runs=0)
    text = client.metrics()
    assert 'jointdnn_http_requests_total{method="GET",route="/v1/models/{name}/profile",status="400"}' in text
    assert 'jointdnn_errors_total{code="bad_runs"}' in text
    assert "jointdnn_http_request_duration_seconds_bucket" in text
    assert "jointdnn_infer_compute_seconds_count" in text


def test_health_needs_no_token_and_the_server_has_no_tensorflow(auth_server: BackgroundServer) -> None:
    health = httpx.get(auth_server.base_url + "/healthz").json()
    assert health["status"] == "ok" and health["models"] == sorted(MODELS)
    assert health["backend"] == "litert"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/small_cnn-fp32", "/v1/load", "/metrics",
                                  "/v1/models/small_cnn-fp32/profile?runs=1", "/openapi.json", "/docs"])  # fmt: skip
def test_token_required_everywhere_else(auth_server: BackgroundServer, path: str) -> None:
    url = auth_server.base_url + path
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_infer_needs_the_token_and_client_sends_it(auth_server: BackgroundServer) -> None:
    import numpy as np

    x = np.zeros((1, 32, 32, 3), np.float32)
    with CloudClient(auth_server.base_url) as anonymous, pytest.raises(ServerRejectedError) as info:
        anonymous.infer("small_cnn-fp32", x, from_segment=0)
    assert info.value.status == 401
    with CloudClient(auth_server.base_url, token=TOKEN) as cloud:
        assert cloud.infer("small_cnn-fp32", x, from_segment=0).output.shape == (1, 10)


def test_without_token_everything_is_open(live_server: BackgroundServer) -> None:
    for path in ("/v1/models", "/v1/load", "/metrics", "/docs"):
        assert httpx.get(live_server.base_url + path).status_code == 200
    schema = httpx.get(live_server.base_url + "/openapi.json").json()
    assert {"/healthz", "/v1/models", "/v1/models/{name}/infer", "/v1/load", "/metrics"} <= set(
        schema["paths"]
    )
    infer = schema["paths"]["/v1/models/{name}/infer"]["post"]
    assert "application/x-npy" in infer["requestBody"]["content"]
    assert {"413", "415", "422", "503"} <= set(infer["responses"])


def test_discovery_skips_symlinks_that_leave_the_bundle_dir(served_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    root.mkdir()
    (root / "inside").symlink_to(served_root / "small_cnn-fp32")  # resolves outside root
    (root / "not-a-bundle").mkdir()
    assert discover_bundles(root) == {}
    assert discover_bundles(served_root / "small_cnn-int8") == {
        "small_cnn-int8": served_root / "small_cnn-int8"
    }
    assert sorted(discover_bundles(served_root)) == sorted(MODELS)
    with pytest.raises(BundleError, match="does not exist"):
        discover_bundles(tmp_path / "missing")


def test_background_server_refuses_a_missing_bundle_dir(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        BackgroundServer(Settings(bundle_dir=tmp_path / "missing")).start()


def test_a_broken_bundle_is_reported_not_served(served_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "bundles"
    shutil.copytree(served_root / "small_cnn-fp32", root / "good")
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{not json")
    with BackgroundServer(Settings(bundle_dir=root, pool_size=1)) as server:
        health = httpx.get(server.base_url + "/healthz").json()
    assert health["models"] == ["good"]
    assert "not a valid bundle manifest" in health["failed"]["broken"]


def test_settings_come_from_jointdnn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOINTDNN_BUNDLE_DIR", "/srv/bundles")
    monkeypatch.setenv("JOINTDNN_TOKEN", "abc")
    monkeypatch.setenv("JOINTDNN_POOL_SIZE", "3")
    monkeypatch.setenv("JOINTDNN_MAX_REQUEST_BYTES", "2048")
    settings = Settings()
    assert settings.bundle_dir == Path("/srv/bundles") and settings.pool_size == 3
    assert settings.token is not None and settings.token.get_secret_value() == "abc"
    assert settings.max_request_bytes == 2048
    monkeypatch.setenv("JOINTDNN_TOKEN", "")
    assert Settings().token is None


def test_server_timing_parser() -> None:
    assert parse_server_timing("parse;dur=0.5, queue;dur=0.012, compute;dur=3.25") == {
        "parse": 0.5, "queue": 0.012, "compute": 3.25,
    }  # fmt: skip
    assert parse_server_timing("cache;desc=hit, db;dur=2") == {"db": 2.0}


def test_server_modules_import_without_tensorflow() -> None:
    code = (
        "import sys, server.app, server.client, server.background, harness.cli.serve_cmd\n"
        "server.app.create_app(server.settings.Settings(bundle_dir='.'))\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ}, timeout=60)


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic dXNlcjpwdw==", 401), ("Bearer", 401), ("Bearer nope", 403)],
)
def test_infer_checks_the_token_itself(
    auth_server: BackgroundServer, authorization: str | None, status: int
) -> None:
    headers = {"Content-Type": "application/x-npy"} | (
        {"Authorization": authorization} if authorization else {}
    )
    response = httpx.post(auth_server.base_url + "/v1/models/small_cnn-fp32/infer?from_segment=0", headers=headers,
                          content=b"")  # fmt: skip
    assert response.status_code == status
    assert response.json()["code"] == ("unauthorized" if status == 401 else "forbidden")
