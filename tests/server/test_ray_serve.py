"""The same app on Ray Serve (a local Ray with 2 CPUs): tails equal the whole model through CloudClient,
and bad requests get the uvicorn server's exact status codes and error bodies."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from models.runtime import SegmentChain, SegmentRunner
from server import wire
from server.background import BackgroundServer
from server.client import CloudClient
from server.settings import Settings

pytest.importorskip("ray.serve", reason="Ray Serve is the optional `ray` extra: pip install -e '.[ray]'")

from server.ray_serve import APP_NAME, build_deployment

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TOKEN = "ray-token"
NPY = {"Content-Type": wire.CONTENT_TYPE, "Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def settings(served_root: Path) -> Settings:
    return Settings(bundle_dir=served_root, token=TOKEN, pool_size=1, max_request_bytes=1 << 18)


@pytest.fixture(scope="module")
def ray_base_url(settings: Settings) -> Iterator[str]:
    """Ray Serve on a free loopback port with one replica; Ray and Serve stop at the end."""
    import ray
    from ray import serve

    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_deployment(settings, replicas=1), name=APP_NAME, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def uvicorn_base_url(settings: Settings) -> Iterator[str]:
    with BackgroundServer(settings) as server:
        yield server.base_url


def test_tails_through_cloudclient_equal_the_whole_model(
    ray_base_url: str, local_chains: dict[str, SegmentChain], whole_runners: dict[str, SegmentRunner]
) -> None:
    rng = np.random.default_rng(5)
    with CloudClient(ray_base_url, token=TOKEN) as cloud:
        health = cloud.health()
        assert set(health["models"]) == {"small_cnn-fp32", "small_cnn-int8"}
        assert health["tensorflow_imported"] is False
        for name in ("small_cnn-fp32", "small_cnn-int8"):
            chain = local_chains[name]
            x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
            whole = chain.finish_output(whole_runners[name].run(chain.prepare_input(x)))
            for cut in (1, 5, 8):
                head = chain.run(chain.prepare_input(x), 0, cut).output
                got = cloud.infer(name, head, from_segment=cut, dequantize=True).output
                np.testing.assert_array_equal(got, chain.finish_output(chain.run(head, cut).output))
                if name.endswith("fp32"):
                    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-5)
                else:
                    assert np.argmax(got) == np.argmax(whole)
        assert cloud.load()["served"] >= 6


BAD_REQUESTS: list[tuple[str, dict[str, object], bytes, dict[str, str]]] = [
    ("small_cnn-fp32", {"from_segment": 2}, wire.encode_npy(np.zeros((1, 8, 8, 16), np.float32)), NPY),
    ("small_cnn-fp32", {"from_segment": 2}, b"\x93NUMPY garbage", NPY),
    ("small_cnn-fp32", {"from_segment": 9}, wire.encode_npy(np.zeros(1, np.float32)), NPY),
    ("small_cnn-fp32", {"from_segment": "two"}, b"", NPY),
    ("resnet9000", {"from_segment": 0}, b"", NPY),
    ("small_cnn-fp32", {"from_segment": 2}, b"[1, 2]", {**NPY, "Content-Type": "application/json"}),
    ("small_cnn-fp32", {"from_segment": 2}, b"x", {**NPY, "Content-Encoding": "br"}),
    ("small_cnn-fp32", {"from_segment": 2}, wire.encode_npy(np.zeros((1, 64, 64, 16), np.float32)), NPY),
    ("small_cnn-fp32", {"from_segment": 2}, b"", {"Content-Type": wire.CONTENT_TYPE}),
    ("small_cnn-fp32", {"from_segment": 2}, b"", {**NPY, "Authorization": "Bearer wrong"}),
]


@pytest.mark.parametrize(
    "request_", BAD_REQUESTS, ids=lambda r: f"{r[0]}-{sorted(r[1].items())}-{r[2][:8]!r}"
)
def test_bad_requests_get_the_uvicorn_servers_4xx_and_body(
    ray_base_url: str, uvicorn_base_url: str, request_: tuple[str, dict[str, object], bytes, dict[str, str]]
) -> None:
    name, params, body, headers = request_
    answers = []
    for base in (ray_base_url, uvicorn_base_url):
        response = httpx.post(f"{base}/v1/models/{name}/infer", params=params, content=body, headers=headers)
        answers.append((response.status_code, response.json()))
    assert 400 <= answers[0][0] < 500, answers[0]
    assert answers[0] == answers[1]
