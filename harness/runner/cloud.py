"""The cloud half of a run: a local uvicorn server behind the shaped link, or a given URL.

``--server local`` starts ``uvicorn server.app:create_app --factory`` on the cloud side of each link
(inside its cloud namespace when shaping with tc, so every request crosses the shaped veth; on the
host's loopback when pacing) serving exactly the run's bundle; it stops with the link. A remote URL is
used as it is; the link is then emulated by client-side pacing on top of the real network (the
namespaces route nowhere else, by design).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from harness.links import ShapedLink
from models.errors import ServerUnavailableError

__all__ = ["start_local_server", "wait_healthy"]


def _get_health(url: str) -> int:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code
    except httpx.HTTPError:
        return 0


def wait_healthy(shaped: ShapedLink, url: str, timeout_s: float = 90.0) -> None:
    """Poll ``/healthz`` from the device side until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if shaped.device_call(_get_health, url) == 200:
            return
        time.sleep(0.2)
    raise ServerUnavailableError(f"the local server at {url} did not become healthy within {timeout_s:.0f} s")


def start_local_server(
    shaped: ShapedLink, bundle_dir: Path, *, log_path: Path | None = None, interpreter_threads: int = 1
) -> str:
    """Start uvicorn serving ``bundle_dir`` on the link's cloud side; return the URL the device uses.

    The process belongs to ``shaped`` and is stopped when the link closes.
    """
    argv = [
        sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
        "--host", shaped.cloud_bind_host, "--port", str(shaped.server_port),
        "--log-level", "warning", "--no-access-log",
        # keep idle connections open across device-only stretches of a run: with the default 5 s the
        # server may close a pooled connection just as the client reuses it (and a delayed link
        # widens that race), which httpx reports as "Server disconnected without sending a response"
        "--timeout-keep-alive", "600",
    ]  # fmt: skip
    env = {
        "JOINTDNN_BUNDLE_DIR": str(Path(bundle_dir).resolve()),
        "JOINTDNN_POOL_SIZE": "1",
        "JOINTDNN_INTERPRETER_THREADS": str(interpreter_threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    shaped.spawn_cloud(argv, env=env, stdout_path=str(log_path) if log_path else None)
    url = shaped.cloud_url()
    wait_healthy(shaped, url)
    return url
