"""What the controller believes about the link and the server, from its own recent traffic.

Link (:class:`LinkEstimator`), as video ABR players do it: every cloud exchange is one throughput sample
per direction, and the estimate is the **harmonic mean** of the last ``window`` samples (robust to a
single lucky burst: one fast sample cannot pull it up much, one slow sample pulls it down); samples
older than ``window_s`` before the newest drop out, so a change of link is followed within seconds. When
the schedule sends nothing for a while (mobile-only), small probes give samples. An exchange
is timed as a whole (request + response), so its wire time minus the estimated round trip is shared
between the two directions in proportion to the serialisation the current estimate predicts for each; a
direction carrying too few bytes to time gives no sample. The round trip is the
**minimum** of the last ``window`` ping samples (tiny requests: the load polls), as BBR's min-RTT filter:
a ping queued behind a large upload must not inflate it.

Server (:class:`QueueEstimator`): the expected queueing delay of one more request from ``/v1/load``
(in flight, queued, pool size, recent compute time): with ``b`` requests in the system (ours excluded)
and ``c`` chains, a newcomer waits ~``max(0, b - c + 1) * compute / c``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.links import radio
from harness.links.trace import LinkConditions

__all__ = ["LinkEstimator", "QueueEstimator", "harmonic_mean"]

MIN_SAMPLE_BYTES = 32_000  # a direction with fewer bytes is mostly latency and overhead: no sample
MIN_SERIAL_MS = 0.5  # serialisation shorter than this cannot be timed against the RTT


def harmonic_mean(values: deque[float] | list[float]) -> float:
    """Harmonic mean of positive values (the ABR throughput estimate)."""
    return len(values) / sum(1.0 / v for v in values)


class LinkEstimator:
    """Up/down Mbps (harmonic mean of a window) and per-request latency (windowed minimum)."""

    def __init__(self, prior: LinkConditions, *, window: int = 5, window_s: float = 2.0):
        self.prior = prior
        self.window = window
        self.window_s = window_s
        self._up: deque[tuple[float, float]] = deque(maxlen=window)  # (time s, Mbps)
        self._down: deque[tuple[float, float]] = deque(maxlen=window)
        self._rtt: deque[tuple[float, float]] = deque(maxlen=window)  # (time s, ms)
        self.last_sample_s = -math.inf  # time of the last throughput sample

    def _recent(self, samples: deque[tuple[float, float]]) -> list[float]:
        newest = samples[-1][0]
        return [v for t, v in samples if t >= newest - self.window_s]

    def estimate(self) -> LinkConditions:
        """The current belief (the prior for what has no sample yet)."""
        return LinkConditions(
            harmonic_mean(self._recent(self._up)) if self._up else self.prior.up_mbps,
            harmonic_mean(self._recent(self._down)) if self._down else self.prior.down_mbps,
            min(self._recent(self._rtt)) if self._rtt else self.prior.rtt_ms,
        )

    def add_ping(self, rtt_ms: float, now_s: float = 0.0) -> None:
        """A tiny request's round trip (ms): an RTT sample."""
        if rtt_ms > 0:
            self._rtt.append((now_s, rtt_ms))

    def add_probe(
        self, up_bytes: float, up_ms: float, down_bytes: float, down_ms: float, now_s: float, *, rtt_ms: float
    ) -> None:
        """A probe: an upload and a download timed separately (ms), each including one round trip of
        ``rtt_ms`` (a ping on the probe's own connection, without the HTTP overhead of the polls)."""
        rtt = rtt_ms
        for nbytes, elapsed, samples in ((up_bytes, up_ms, self._up), (down_bytes, down_ms, self._down)):
            serial = elapsed - rtt
            if nbytes >= MIN_SAMPLE_BYTES and serial >= MIN_SERIAL_MS:
                samples.append((now_s, nbytes * 8 / 1e3 / serial))
                self.last_sample_s = now_s

    def add_exchange(
        self, up_bytes: float, down_bytes: float, wire_ms: float, now_s: float, *, requests: int = 1
    ) -> None:
        """``requests`` request/responses on the wire, in total: ``wire_ms`` excludes the server's
        compute and queue time."""
        belief = self.estimate()
        serial_ms = wire_ms - requests * belief.rtt_ms  # both directions' serialisation, ms
        expected_up = radio.serial_ms(up_bytes, belief.up_mbps)
        expected_down = radio.serial_ms(down_bytes, belief.down_mbps)
        if serial_ms <= 0 or expected_up + expected_down <= 0:
            return
        up_ms = serial_ms * expected_up / (expected_up + expected_down)
        for nbytes, share_ms, samples in (
            (up_bytes, up_ms, self._up),
            (down_bytes, serial_ms - up_ms, self._down),
        ):
            if nbytes >= MIN_SAMPLE_BYTES and share_ms >= MIN_SERIAL_MS:
                samples.append((now_s, nbytes * 8 / 1e3 / share_ms))  # Mbit / s = bits / ms / 1e3
                self.last_sample_s = now_s


@dataclass
class QueueEstimator:
    """Expected queueing delay (ms) of one more request, from the server's ``/v1/load`` report."""

    queue_ms: float = 0.0
    utilization: float = 0.0
    backlog: int = 0  # requests in the system, ours excluded

    def update(self, report: Mapping[str, Any], model: str, *, ours_in_flight: bool = False) -> float:
        """Read one load report; return the new estimate (ms)."""
        entry = (report.get("models") or {}).get(model) or report
        chains = max(1, int(entry.get("pool_size") or report.get("pool_size") or 1))
        backlog = int(entry.get("in_flight", 0)) + int(entry.get("queued", 0)) - int(ours_in_flight)
        compute_ms = entry.get("recent_compute_ms_median") or 0.0
        self.backlog = max(0, backlog)
        self.utilization = float(entry.get("utilization", report.get("utilization", 0.0)))
        self.queue_ms = max(0, self.backlog - chains + 1) * float(compute_ms) / chains
        return self.queue_ms
