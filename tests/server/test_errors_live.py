"""Every bad request gets its status code and a JSON error body; the client maps them to harness errors."""

from __future__ import annotations

import gzip
import io
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from models.errors import ServerRejectedError, ServerUnavailableError
from server import wire
from server.background import BackgroundServer
from server.client import CloudClient
from server.settings import Settings

NPY = {"Content-Type": wire.CONTENT_TYPE}
INFER = "/v1/models/small_cnn-fp32/infer"


def _npy(x: np.ndarray) -> bytes:
    return wire.encode_npy(x)


def _assert_error(response: httpx.Response, status: int, code: str, *fragments: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    for fragment in fragments:
        assert fragment in body["detail"]
    return body


@pytest.fixture(scope="module")
def http(live_server: BackgroundServer) -> httpx.Client:
    with httpx.Client(base_url=live_server.base_url) as session:
        yield session


def test_shape_mismatch_is_422_naming_expected_and_got(http: httpx.Client) -> None:
    body = _npy(np.zeros((1, 8, 8, 16), np.float32))
    response = http.post(INFER, params={"from_segment": 2}, content=body, headers=NPY)
    _assert_error(response, 422, "tensor_mismatch", "[1, 16, 16, 16]", "[1, 8, 8, 16]")


def test_dtype_mismatch_is_422_naming_expected_and_got(http: httpx.Client) -> None:
    response = http.post(INFER, params={"from_segment": 2}, content=_npy(np.zeros((1, 16, 16, 16), np.int32)),
                         headers=NPY)  # fmt: skip
    _assert_error(response, 422, "tensor_mismatch", "float32", "int32")
    response = http.post("/v1/models/small_cnn-int8/infer", params={"from_segment": 2},
                         content=_npy(np.zeros((1, 16, 16, 16), np.float64)), headers=NPY)  # fmt: skip
    _assert_error(response, 422, "tensor_mismatch", "int8", "float64")


def test_malformed_body_is_400(http: httpx.Client) -> None:
    response = http.post(INFER, params={"from_segment": 2}, content=b"\x93NUMPY garbage", headers=NPY)
    _assert_error(response, 400, "bad_npy")


def test_pickle_payload_is_400_and_never_unpickled(http: httpx.Client) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    response = http.post(INFER, params={"from_segment": 2}, content=buffer.getvalue(), headers=NPY)
    _assert_error(response, 400, "bad_npy", "not allowed")


def test_bad_gzip_is_400_and_unknown_encoding_is_415(http: httpx.Client) -> None:
    response = http.post(INFER, params={"from_segment": 2}, content=b"not gzip",
                         headers={**NPY, "Content-Encoding": "gzip"})  # fmt: skip
    _assert_error(response, 400, "bad_npy", "gzip")
    response = http.post(
        INFER, params={"from_segment": 2}, content=b"x", headers={**NPY, "Content-Encoding": "br"}
    )
    _assert_error(response, 415, "unsupported_encoding", "br")


def test_wrong_content_type_is_415(http: httpx.Client) -> None:
    response = http.post(INFER, params={"from_segment": 2}, json=[[1.0, 2.0]])
    _assert_error(response, 415, "unsupported_media_type", "application/x-npy")


def test_non_integer_parameter_is_400(http: httpx.Client) -> None:
    response = http.post(INFER, params={"from_segment": "two"}, content=b"", headers=NPY)
    _assert_error(response, 400, "bad_request", "from_segment")
    response = http.post(INFER, params={"from_segment": 2, "dequantize": "maybe"}, content=b"", headers=NPY)
    _assert_error(response, 400, "bad_request", "dequantize")
    response = http.post(INFER, content=b"", headers=NPY)
    _assert_error(response, 400, "bad_request", "from_segment")
    response = http.get("/v1/models/small_cnn-fp32/profile", params={"runs": 0})
    _assert_error(response, 400, "bad_runs")


@pytest.mark.parametrize("params", [{"from_segment": 9}, {"from_segment": -1}, {"from_segment": 3, "to_segment": 3},
                                    {"from_segment": 0, "to_segment": 10}])  # fmt: skip
def test_segment_range_outside_the_chain_is_404(http: httpx.Client, params: dict[str, int]) -> None:
    response = http.post(INFER, params=params, content=_npy(np.zeros(1, np.float32)), headers=NPY)
    _assert_error(response, 404, "unknown_segment_range", "segments 0..8")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/resnet9000/infer",
        "/v1/models/..%2F..%2Fetc%2Fpasswd/infer",
        "/v1/models/%2e%2e/infer",
        "/v1/models/small_cnn-fp32%2F..%2F..%2Fsmall_cnn-int8/infer",
        "/v1/models/.hidden/infer",
    ],
)
def test_unknown_or_escaping_model_names_are_404(http: httpx.Client, path: str) -> None:
    response = http.post(path, params={"from_segment": 0}, content=b"", headers=NPY)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_oversized_body_is_413(served_root: Path) -> None:
    with (
        BackgroundServer(Settings(bundle_dir=served_root, max_request_bytes=4096, pool_size=1)) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        big = _npy(np.zeros((1, 16, 16, 16), np.float32))  # 16 KiB > 4 KiB
        _assert_error(http.post(INFER, params={"from_segment": 2}, content=big, headers=NPY), 413,
                      "payload_too_large")  # fmt: skip

        def chunks() -> object:  # no Content-Length: the limit must hold while streaming
            yield big[:3000]
            yield big[3000:]

        response = http.post(INFER, params={"from_segment": 2}, content=chunks(), headers=NPY)  # type: ignore[arg-type]
        _assert_error(response, 413, "payload_too_large")
        bomb = gzip.compress(big)  # small on the wire, 16 KiB inflated
        assert len(bomb) < 4096
        response = http.post(INFER, params={"from_segment": 2}, content=bomb,
                             headers={**NPY, "Content-Encoding": "gzip"})  # fmt: skip
        _assert_error(response, 413, "payload_too_large")


def test_full_queue_is_503_with_retry_after(served_root: Path) -> None:
    settings = Settings(bundle_dir=served_root, pool_size=1, max_queue=0)
    with BackgroundServer(settings) as server, CloudClient(server.base_url, retries=0) as cloud:
        busy = threading.Thread(target=cloud.profile, args=("small_cnn-fp32", 1000))  # holds the only chain
        busy.start()
        deadline = time.monotonic() + 30
        while cloud.load()["models"]["small_cnn-fp32"]["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        response = httpx.post(server.base_url + INFER, params={"from_segment": 2}, headers=NPY,
                              content=_npy(np.zeros((1, 16, 16, 16), np.float32)))  # fmt: skip
        busy_running = busy.is_alive()
        busy.join()
    assert busy_running, "the profile finished before the probe; the test proved nothing"
    body = _assert_error(response, 503, "queue_full")
    assert int(response.headers["retry-after"]) >= 1
    assert "retry" in body["detail"]


def test_client_maps_statuses_to_harness_errors(client: CloudClient) -> None:
    with pytest.raises(ServerRejectedError) as info:
        client.infer("small_cnn-fp32", np.zeros((1, 3), np.float32), from_segment=2)
    assert info.value.status == 422 and "[1, 16, 16, 16]" in info.value.detail
    with pytest.raises(ServerRejectedError) as info:
        client.infer("nope", np.zeros(1, np.float32), from_segment=0)
    assert info.value.status == 404


def test_client_reports_an_unreachable_server() -> None:
    with (
        CloudClient("http://127.0.0.1:9", retries=1, timeout_s=2) as cloud,
        pytest.raises(ServerUnavailableError),
    ):
        cloud.models()


def test_the_schema_declares_the_bounds_of_profile_runs(http: httpx.Client) -> None:
    parameters = http.get("/openapi.json").json()["paths"]["/v1/models/{name}/profile"]["get"]["parameters"]
    runs = next(p for p in parameters if p["name"] == "runs")["schema"]
    assert runs["minimum"] == 1 and runs["maximum"] == Settings().max_profile_runs
