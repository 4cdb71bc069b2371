"""``jointdnn serve --workers 2`` in a subprocess: correct answers from both workers, and /metrics and /v1/load
summed over them (each request counted exactly once)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.cli import main
from models.errors import ServerUnavailableError
from models.runtime import SegmentChain
from server.client import CloudClient

REQUESTS = 24


def _infer_count(metrics: str) -> float:
    """Sum of the 200 answers of the infer route in a Prometheus text exposition."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("jointdnn_http_requests_total{")
        and 'route="/v1/models/{name}/infer"' in line
        and 'status="200"' in line
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_with_two_workers_and_a_token(served_root: Path, local_chains: dict[str, SegmentChain]) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTDNN_")}
    cmd = [sys.executable, "-m", "harness.cli", "serve", "--bundle", str(served_root), "--port", str(port),
           "--workers", "2", "--token", "tok", "--pool-size", "1", "--log-level", "warning"]  # fmt: skip
    shared_dirs = set(Path(tempfile.gettempdir()).glob("jointdnn-workers-*"))
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "jointdnn serve did not come up"
            time.sleep(0.1)
        pids: dict[int, int] = {}  # worker pid -> inferences it answered
        chain = local_chains["small_cnn-fp32"]
        x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
        expected = chain.run(x).output
        for _ in range(REQUESTS):  # fresh connections spread over the workers
            with CloudClient(base, token="tok") as cloud:
                np.testing.assert_array_equal(
                    cloud.infer("small_cnn-fp32", x, from_segment=0).output, expected
                )
                health = cloud.health()  # same keep-alive connection: the worker that answered
                assert health["tensorflow_imported"] is False
                pids[health["pid"]] = pids.get(health["pid"], 0) + 1
        assert process.pid not in pids  # the workers answer, not the supervisor
        assert len(pids) == 2, pids  # both workers answered some: the sums below span processes
        with CloudClient(base, token="tok") as cloud:
            assert _infer_count(cloud.metrics()) == REQUESTS  # every request counted exactly once
            deadline = time.monotonic() + 10  # each worker publishes its load every 0.2 s
            while (load := cloud.load())["served"] != REQUESTS and time.monotonic() < deadline:
                time.sleep(0.1)
        assert load["workers"] == 2 and load["served"] == REQUESTS
        assert load["models"]["small_cnn-fp32"]["served"] == REQUESTS
        assert load["pool_size"] == 2 * 2  # two models x one chain, in each of two workers
    finally:
        process.terminate()
        process.wait(timeout=30)
    try:
        CloudClient(base, retries=0, timeout_s=1).health()
        raise AssertionError("server still answering after terminate")
    except ServerUnavailableError:
        pass
    output = process.stdout.read().decode() if process.stdout else ""
    assert "Traceback" not in output, output
    assert set(Path(tempfile.gettempdir()).glob("jointdnn-workers-*")) == shared_dirs  # removed at exit


def test_serve_refuses_a_missing_bundle_dir(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "harness.cli", "serve", "--bundle", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--replicas", "2"], "need --ray"),
        (["--ray", "--workers", "2"], "--workers is for uvicorn"),
        (["--ray", "--autoscale", "3:1"], "MIN:MAX"),
        (["--ray", "--autoscale", "two"], "MIN:MAX"),
    ],
)
def test_serve_refuses_inconsistent_scaling_options(
    served_root: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--bundle", str(served_root), *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
