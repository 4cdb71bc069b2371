"""A link session: one shaped, measured link with the cloud half behind it and a client on the device side.

:func:`open_link_session` shapes the link (tc or pacing; pacing on top of the real network for a remote
server), measures what it achieves, starts the local server on its cloud side (``--server local``) and
opens a :class:`~server.client.CloudClient` from its device side; leaving the block closes the client,
stops the server and tears the link down. Planning and execution happen inside, on the session.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.links import LinkMeasurement, ShapedLink, ShapingRequest, measure_link
from harness.runner.cloud import start_local_server
from harness.runner.observer import RunObserver
from harness.specs import LinkSpec
from server.client import CloudClient, InferResult

__all__ = ["Exchange", "LinkSession", "open_link_session"]

CLIENT_TIMEOUT_S = 120.0  # one request, upload + compute + download, on the slowest link


@dataclass(frozen=True)
class Exchange:
    """One request/response over the session's link, as timed from the device side (ms)."""

    reply: InferResult
    wire_ms: float  # client wall time minus server compute and queue, client-side pacing included
    paced_ms: float  # the pacing sleeps within wire_ms (pacing shaping only)
    server_ms: float  # the server's own compute (Server-Timing), 0 when not reported
    queue_ms: float


def _finite(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


@dataclass(frozen=True)
class LinkSession:
    """What the run has of one link while it is up."""

    shaped: ShapedLink
    measured: LinkMeasurement  # achieved just after shaping
    client: CloudClient  # lives on the device side of the link
    served_model: str  # the bundle's name on the server

    @property
    def link(self) -> LinkSpec:
        return self.shaped.link

    def infer(self, x: np.ndarray, *, from_segment: int, to_segment: int) -> InferResult:
        """One request from the device side: segments ``from_segment .. to_segment-1`` on the server."""
        return self.shaped.device_call(
            self.client.infer, self.served_model, x, from_segment=from_segment, to_segment=to_segment
        )

    def infer_jpeg(self, image: bytes, *, to_segment: int) -> InferResult:
        """One request from the device side: the JPEG-coded input through segments ``0 .. to_segment-1``."""
        return self.shaped.device_call(
            self.client.infer_jpeg, self.served_model, image, to_segment=to_segment
        )

    def exchange(
        self, x: np.ndarray, *, from_segment: int, to_segment: int, jpeg: bytes | None = None
    ) -> Exchange:
        """One timed request: the reply and the time on the wire (client wall time minus server time).

        ``jpeg``: upload these JPEG bytes instead of ``x`` (only from segment 0; the server decodes).
        """
        t0 = time.perf_counter()
        if jpeg is not None and from_segment == 0:
            reply = self.infer_jpeg(jpeg, to_segment=to_segment)
        else:
            reply = self.infer(x, from_segment=from_segment, to_segment=to_segment)
        round_trip_ms = (time.perf_counter() - t0) * 1e3
        server_ms, queue_ms = _finite(reply.server_ms), _finite(reply.queue_ms)
        wire_ms = max(0.0, round_trip_ms - server_ms - queue_ms)
        paced_ms = self.shaped.pace(int(reply.request_bytes), int(reply.response_bytes), wire_ms)
        return Exchange(reply, wire_ms + paced_ms, paced_ms, server_ms, queue_ms)

    def profile(self, runs: int) -> list[dict[str, Any]]:
        """The server's ``/profile`` rows of the served bundle."""
        return self.shaped.device_call(self.client.profile, self.served_model, runs)


@contextmanager
def open_link_session(
    link: LinkSpec,
    bundle_dir: Path,
    *,
    server: str,
    shaping: ShapingRequest,
    token: str | None,
    log_dir: Path,
    observer: RunObserver,
) -> Iterator[LinkSession]:
    """Shape and measure ``link``, put the cloud half behind it, yield the session (see module doc).

    ``server``: ``local`` (uvicorn serving ``bundle_dir`` on the link's cloud side, logging to
    ``log_dir/server-<link>.log``) or the URL of a remote server (then the link is paced).
    """
    local = server == "local"
    mode: ShapingRequest = shaping if local else "pacing"
    observer.phase(f"{link.name}: shaping the link ({mode})")
    with ShapedLink(link, shaping=mode) as shaped:
        if not local:
            shaped.note = "remote server: client-side pacing on top of the real network"
        measured = measure_link(shaped)
        observer.phase(
            f"{link.name}: {shaped.mode}, achieved up {measured.up_mbps:.2f} Mbps, "
            f"down {measured.down_mbps:.2f} Mbps, RTT {measured.rtt_ms:.1f} ms"
        )
        if local:
            url = start_local_server(shaped, bundle_dir, log_path=log_dir / f"server-{link.name}.log")
        else:
            url = server
        client = shaped.device_call(lambda: CloudClient(url, token=token, timeout_s=CLIENT_TIMEOUT_S))
        try:
            yield LinkSession(shaped, measured, client, Path(bundle_dir).name)
        finally:
            shaped.device_call(client.close)
