"""Measure what a shaped link achieves: uplink and downlink throughput and round trip.

Runs on the device side of a :class:`~harness.links.shaping.ShapedLink` against the probe on the cloud
side (:mod:`harness.links.probe`), over one TCP connection: a few 1-byte pings give the RTT (median),
then about half a second of data each way gives the throughput, with one RTT taken off the transfer
time (``Mbps = bytes * 8 / (t - rtt)``). In pacing mode the same exchanges are paced like the runner's.
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import asdict, dataclass

from harness.links import radio
from harness.links.probe import recv_exact, send_zeros
from harness.links.shaping import ShapedLink
from models.errors import LinkError

__all__ = ["LinkMeasurement", "measure_link", "probe_transfer"]


@dataclass
class LinkMeasurement:
    """The link as measured just before a run, next to what the profile asked for."""

    link: str
    shaping: str  # ShapingMode
    note: str
    target_up_mbps: float
    target_down_mbps: float
    target_rtt_ms: float
    up_mbps: float
    down_mbps: float
    rtt_ms: float
    probe_bytes_up: int
    probe_bytes_down: int

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def _probe(
    host: str, port: int, up_bytes: int, down_bytes: int, pings: int
) -> tuple[list[float], float, float]:
    """(ping round trips ms, upload ms, download ms) — runs on the device-side thread."""
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        for _ in range(pings):
            t0 = time.perf_counter()
            sock.sendall(b"U" + (0).to_bytes(8, "big"))
            recv_exact(sock, 1)
            rtts.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        sock.sendall(b"U" + up_bytes.to_bytes(8, "big"))
        send_zeros(sock, up_bytes)
        recv_exact(sock, 1)
        up_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        sock.sendall(b"D" + down_bytes.to_bytes(8, "big"))
        recv_exact(sock, down_bytes)
        down_ms = (time.perf_counter() - t0) * 1e3
    return rtts, up_ms, down_ms


def probe_transfer(host: str, port: int, up_bytes: int, down_bytes: int) -> tuple[float, float, float]:
    """(ping ms, upload ms, download ms): one ping, then one transfer each way with the link probe (each
    including one round trip) on one connection; call it from a thread on the device side (no pacing
    applied here)."""
    rtts, up_ms, down_ms = _probe(host, port, up_bytes, down_bytes, 1)
    return rtts[0], up_ms, down_ms


def measure_link(shaped: ShapedLink, *, seconds: float = 0.5, pings: int = 5) -> LinkMeasurement:
    """Time pings, an upload and a download over ``shaped``; ``seconds`` of data per direction."""
    link = shaped.link
    up_bytes = max(32_000, int(radio.bytes_per_s(link.up_mbps) * seconds))
    down_bytes = max(32_000, int(radio.bytes_per_s(link.down_mbps) * seconds))
    try:
        rtts, up_ms, down_ms = shaped.device_call(
            _probe, shaped.cloud_host, shaped.probe_port, up_bytes, down_bytes, pings
        )
    except OSError as exc:
        raise LinkError(f"cannot measure link {link.name}: {exc}") from None
    if shaped.mode == "pacing":  # the probe ran unshaped on loopback: pace it like the runner does
        rtts = [r + shaped.pace(0, 0, r) for r in rtts]
        up_ms += shaped.pace(up_bytes, 0, up_ms)
        down_ms += shaped.pace(0, down_bytes, down_ms)
    rtt_ms = statistics.median(rtts)
    up_mbps = radio.throughput_mbps(up_bytes, max(up_ms - rtt_ms, 1e-3))
    down_mbps = radio.throughput_mbps(down_bytes, max(down_ms - rtt_ms, 1e-3))
    return LinkMeasurement(
        link=link.name,
        shaping=shaped.mode,
        note=shaped.note,
        target_up_mbps=link.up_mbps,
        target_down_mbps=link.down_mbps,
        target_rtt_ms=link.rtt_ms,
        up_mbps=up_mbps,
        down_mbps=down_mbps,
        rtt_ms=rtt_ms,
        probe_bytes_up=up_bytes,
        probe_bytes_down=down_bytes,
    )
