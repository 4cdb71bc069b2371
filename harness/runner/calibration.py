"""Per-link measurements taken just before a link's runs, and the rescale factors as a diagnostic.

``request_overhead_ms`` (:func:`calibrate_request_overhead`): what one infer request costs beyond the
round trip, bytes/bandwidth and server compute — HTTP framing, the web framework, .npy encoding, the
client library — a fixed cost per request that the link model has no term for. It is a *link
measurement*: a probe request (the smallest the model has, from its smallest-input segment on) timed
on the session before any schedule runs, never the executions being predicted; the planner sees it
added to the round trip (:func:`harness.runner.planning.planning_link`).

The compute rescaling (:func:`calibrate_compute`) is **not** used by default: executing mobile-only and
cloud-only on the link and scaling the profiles until they match would fit the cost model on the run
it then predicts (issue #12). The profiles time segments in chain context and carry explicit
per-invocation overheads instead (:mod:`harness.profiling.job`, the server's ``/profile``).
``jointdnn run --calibrate`` still applies it, opt-in. What is always reported is the factor that
*would* have been needed (:func:`rescale_diagnostic`), computed after the runs from the mobile-only and
cloud-only executions and the predictions made before them: a check of the profiles, not an input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.links import radio
from harness.planner import PlanningProblem, evaluate
from harness.reports.schema import MeasurementRow
from harness.runner.execute import ScheduleExecutor
from harness.runner.session import LinkSession
from models.bundle import BundleManifest

__all__ = [
    "Calibration",
    "RescaleDiagnostic",
    "calibrate_compute",
    "calibrate_request_overhead",
    "rescale_diagnostic",
]


@dataclass(frozen=True)
class Calibration:
    """Factors applied to the profiles for one link (1.0 = none, the default; ``--calibrate`` sets them).

    ``mobile_scale`` = measured mobile-only chain compute / sum of the profiled mobile segments;
    ``mobile_energy_scale`` the same for compute energy; ``cloud_scale`` = measured cloud-only server
    compute / sum of the profiled cloud segments; ``request_overhead_ms`` = per-request cost beyond
    RTT + bytes/bandwidth + server compute; ``up_burst_bytes`` / ``down_burst_bytes`` = what the shaper
    lets through unserialised per transfer (:attr:`harness.links.ShapedLink.burst_bytes`); ``rtt_ms`` =
    the round trip measured with the link, planned with in place of the spec's (on a loaded host the
    delay relay's round trip grows, and the request overhead is measured against the measured one).
    """

    mobile_scale: float = 1.0
    mobile_energy_scale: float = 1.0
    cloud_scale: float = 1.0
    request_overhead_ms: float = 0.0
    # bytes per transfer the shaped link passes at line rate (its token bucket; 0 when paced), up / down
    up_burst_bytes: float = 0.0
    down_burst_bytes: float = 0.0
    # the link's measured round trip (ms), which request_overhead_ms is relative to; NaN = the spec's
    rtt_ms: float = math.nan


def _ratio(measured: list[float], profiled: float) -> float:
    value = float(np.median(measured)) / profiled if profiled > 0 else 1.0
    return value if math.isfinite(value) and value > 0 else 1.0


def calibrate_compute(
    executor: ScheduleExecutor, x: np.ndarray, raw: PlanningProblem, *, runs: int = 2
) -> tuple[float, float, float]:
    """(mobile, mobile energy, cloud) scale factors from mobile-only and cloud-only executions.

    Segments profiled alone, warm and over and over, run faster than the same segments executed in a
    chain (cold interpreters on the device's chain runner, caches shared with the other segments, a
    machine whose load changes): two reference executions per side, measured on the spot, scale the
    profiles so that the planner's costs describe the executions it plans.
    """
    n = raw.n
    mobile = [executor.run(["mobile"] * n, x) for _ in range(runs)]
    cloud = [executor.run(["cloud"] * n, x) for _ in range(runs)]
    seg = raw.segments
    return (
        _ratio([e.device_compute_ms for e in mobile], float(seg.mobile_ms.sum())),
        _ratio([e.mobile_compute_mj for e in mobile], float(seg.mobile_mj.sum())),
        _ratio([e.server_ms for e in cloud], float(seg.cloud_ms.sum())),
    )


def calibrate_request_overhead(
    session: LinkSession, manifest: BundleManifest, *, calls: int = 15, idle_s: float = 0.02
) -> float:
    """Median time (ms) one infer request costs beyond RTT, bytes/bandwidth and server compute.

    Measured with the smallest request the model has: from the segment with the smallest input to the
    end (the answer is the model's output; the server's compute is subtracted via Server-Timing). A
    big probe would fold the link model's per-byte error into a "fixed" cost: ResNet-50 with a
    butterfly unit has a 200 KB last-segment input, and probing with it read 64 ms of overhead on 3G
    and 300 ms at 0.5 Mbps, where its 3 KB bottleneck input reads a few ms. One warm-up call, then
    ``calls`` calls ``idle_s`` apart, so that the median spans a moment of the machine rather than an
    instant (on a shared host one instant can be 10x off); against the link as the session measured it.
    """
    measured = session.measured
    up_burst, down_burst = session.shaped.burst_bytes
    n = manifest.num_segments
    start = min(range(n), key=lambda k: (manifest.segments[k].input.nbytes, -k))  # ties: less compute
    spec = manifest.segments[start].input
    x = np.zeros(spec.shape, dtype=np.dtype(spec.dtype))
    samples = []
    for attempt in range(calls + 1):
        time.sleep(idle_s)
        done = session.exchange(x, from_segment=start, to_segment=n)
        serial_ms = radio.serial_ms(done.reply.request_bytes, measured.up_mbps, up_burst)
        serial_ms += radio.serial_ms(done.reply.response_bytes, measured.down_mbps, down_burst)
        if attempt:
            samples.append(done.wire_ms - serial_ms - measured.rtt_ms)
    return max(0.0, float(np.median(samples)))


@dataclass(frozen=True)
class RescaleDiagnostic:
    """The factors a per-link rescaling would have needed (1.0 = the profiles predicted it exactly).

    ``mobile_scale`` = median measured mobile-only device compute / its predicted mobile compute;
    ``mobile_energy_scale`` the same for compute energy; ``cloud_scale`` = median measured cloud-only
    server compute / its predicted cloud compute. NaN when that schedule was not executed.
    """

    mobile_scale: float = math.nan
    mobile_energy_scale: float = math.nan
    cloud_scale: float = math.nan


def _needed(measured: list[float], predicted: float) -> float:
    if not measured or predicted <= 0:
        return math.nan
    value = float(np.median(measured)) / predicted
    return value if math.isfinite(value) else math.nan


def rescale_diagnostic(problem: PlanningProblem, executions: Sequence[MeasurementRow]) -> RescaleDiagnostic:
    """The factors :func:`calibrate_compute` would apply, from executions already made (not applied).

    ``problem`` is the one the plans came from (so with ``--calibrate`` the factors left over after it).
    """
    n = problem.n
    mobile = [e for e in executions if e.schedule == "M" * n]
    cloud = [e for e in executions if e.schedule == "C" * n]
    mobile_only, cloud_only = evaluate(problem, [0] * n), evaluate(problem, [1] * n)
    return RescaleDiagnostic(
        mobile_scale=_needed([e.device_compute_ms for e in mobile], mobile_only.mobile_compute_ms),
        mobile_energy_scale=_needed([e.mobile_compute_mj for e in mobile], mobile_only.mobile_compute_mj),
        cloud_scale=_needed([e.server_ms for e in cloud], cloud_only.cloud_compute_ms),
    )
