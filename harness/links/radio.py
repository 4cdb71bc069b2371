"""Link physics: how long bytes take on a link and what the phone's radio spends on them.

The one place for these formulas; the planner's cost model, the schedule executor, the runner's
calibration and the link measurement all call it. Pure numpy: every function takes floats or numpy
arrays (broadcasting), nothing here imports TensorFlow, pandas or the shaping machinery.

* serialisation: ``t = bytes * 8 / (Mbps * 1e3)`` ms (bits / (Mbit/s * 1e6) s, in ms);
* radio power (Huang et al., MobiSys'12): ``P = alpha * Mbps + beta`` mW while sending/receiving;
* radio energy over an active time ``t``: ``alpha * Mbit + beta * t`` (mW*s = mJ) — the bits cost
  ``alpha`` each whatever the achieved rate, the time costs ``beta``. When the active time is the
  serialisation time this equals ``P * t``: ``(alpha * Mbps + beta) * t = alpha * Mbit + beta * t``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

__all__ = [
    "bytes_per_s",
    "one_way_ms",
    "radio_energy_mj",
    "radio_power_mw",
    "serial_ms",
    "throughput_mbps",
]

# a float, or a numpy array of them (the planner works on (n,) arrays of boundary bytes)
F = TypeVar("F", float, np.ndarray)


def serial_ms(nbytes: F, mbps: float, burst_bytes: float = 0.0) -> F:
    """Serialisation time (ms) of ``nbytes`` at ``mbps``, without any latency.

    ``burst_bytes``: what the link lets through at line rate first (a token bucket's burst), 0 for a radio.
    """
    if burst_bytes:
        return np.maximum(nbytes - burst_bytes, 0.0) * 8 / (mbps * 1e3)  # type: ignore[no-any-return]
    return nbytes * 8 / (mbps * 1e3)


def one_way_ms(rtt_ms: float, request_overhead_ms: float = 0.0) -> float:
    """Per-transfer latency (ms) of a request/response exchange: one round trip shared by two transfers.

    Over HTTP an upload (request) and its download (response) share one round trip, plus the fixed
    per-request serving cost the runner calibrates; each direction is charged half of both.
    """
    return (rtt_ms + request_overhead_ms) / 2


def bytes_per_s(mbps: float) -> float:
    """Bytes per second of a ``mbps`` link."""
    return mbps * 1e6 / 8


def throughput_mbps(nbytes: float, ms: float) -> float:
    """Achieved rate (Mbit/s) of ``nbytes`` moved in ``ms`` milliseconds."""
    return nbytes * 8 / ms / 1e3


def radio_power_mw(mbps: float, alpha_mw_per_mbps: float, beta_mw: float) -> float:
    """Radio power (mW) while moving data at ``mbps``: ``alpha * Mbps + beta``."""
    return alpha_mw_per_mbps * mbps + beta_mw


def radio_energy_mj(nbytes: F, active_ms: F, alpha_mw_per_mbps: float, beta_mw: float) -> F:
    """Radio energy (mJ) of ``nbytes`` moved with the radio active ``active_ms``: ``alpha*Mbit + beta*t``."""
    return alpha_mw_per_mbps * nbytes * 8 / 1e6 + beta_mw * active_ms / 1e3
