"""Execute one schedule end to end: device segments on the device, cloud segments on the server.

For every stage (:mod:`harness.runner.stages`) the boundary tensor is handed over in the segments' own
dtype (int8 for int8 bundles, requantized when the producer's and consumer's parameters differ, as
:mod:`models.runtime` does): a device stage runs ``Device.run_chain`` (in-process for the local device,
``jointdnn_chain_runner`` with .npy files over ADB otherwise); a cloud stage is one HTTP request
``CloudClient.infer(from_segment, to_segment)`` made from the device side of the shaped link.

What is measured per execution, and how the parts add up::

    latency_ms = device_compute_ms + upload_ms + queue_ms + server_ms + download_ms

A schedule that starts on the cloud may upload the photo as JPEG bytes instead of the input tensor
(``jpeg``; label suffix ``+jpeg``): the upload is the encoded file, and the server's decode counts in
``server_ms``.

``device_compute_ms`` is what the device's runner timed (the sum of its segment times); the ADB file
shuffling around it (push input, pull output: an artefact of driving a phone from a host, not part of
an app's inference) is kept apart as ``device_overhead_ms``. ``upload_ms + download_ms`` is the
client's wall time of each HTTP exchange minus the server's own compute and queue time (Server-Timing);
one exchange cannot be split into its two directions from the outside, so the transfer time is shared
between them in proportion to what the measured link predicts for each (one-way latency + bytes/Mbps,
where the one-way latency is half of the RTT plus the calibrated per-request overhead).

Mobile energy (mJ): the device's compute energy (its measurement, else its power model) + the radio
model P = alpha * Mbps + beta (Huang et al.) while sending/receiving — over an active time t (the
transfer time minus the one-way latency) that is alpha * Mbit + beta * t, the planner's formula with
measured times — + ``waiting_mw`` while waiting for the server and for the round trips — the same terms
as the planner's cost model, applied to measured times. Transfer time and radio energy come from
:mod:`harness.links.radio`, as the planner's do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.devices.base import Device
from harness.links import radio
from harness.runner.session import LinkSession
from harness.runner.stages import JPEG_SUFFIX, schedule_label, split_stages
from harness.specs import DeviceSpec, LinkSpec
from models.bundle import BundleManifest, TensorSpec
from models.errors import DeviceError
from models.runtime import convert_tensor, to_float

__all__ = ["Execution", "ScheduleExecutor", "adapt_tensor", "finish_output"]


@dataclass
class Execution:
    """One end-to-end execution of a schedule: the result and the measured breakdown."""

    label: str  # schedule, one letter per segment (M/C)
    output: np.ndarray  # final model output, float32
    device_compute_ms: float = 0.0
    device_overhead_ms: float = 0.0  # adb push/pull around the device runner (excluded from latency)
    upload_ms: float = 0.0
    download_ms: float = 0.0
    server_ms: float = 0.0
    queue_ms: float = 0.0
    paced_ms: float = 0.0  # client-side sleeps (pacing shaping only), included in upload/download
    up_bytes: int = 0  # HTTP body bytes sent
    down_bytes: int = 0  # HTTP body bytes received
    requests: int = 0
    mobile_compute_mj: float = 0.0
    mobile_radio_mj: float = 0.0
    mobile_waiting_mj: float = 0.0
    wall_ms: float = 0.0  # harness wall time of the whole execution (overheads included)
    device_segment_ms: list[float] = field(default_factory=list)
    server_segment_ms: list[float] = field(default_factory=list)

    @property
    def transfer_ms(self) -> float:
        return self.upload_ms + self.download_ms

    @property
    def latency_ms(self) -> float:
        return self.device_compute_ms + self.upload_ms + self.queue_ms + self.server_ms + self.download_ms

    @property
    def mobile_energy_mj(self) -> float:
        return self.mobile_compute_mj + self.mobile_radio_mj + self.mobile_waiting_mj


def adapt_tensor(x: np.ndarray, producer: TensorSpec | None, consumer: TensorSpec) -> np.ndarray:
    """Convert a tensor from its producer's spec (None = float model input) to its consumer's."""
    source = producer.quant if producer is not None else None
    return np.ascontiguousarray(convert_tensor(x, source, consumer.dtype, consumer.quant))


def finish_output(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The last segment's output as float32 (dequantized for int8 bundles)."""
    return to_float(y, spec.quant)


class ScheduleExecutor:
    """Runs schedules of one bundle over one shaped link, with one device and one server."""

    def __init__(
        self,
        *,
        device: Device,
        bundle_dir: Path,
        manifest: BundleManifest,
        session: LinkSession,
        power: DeviceSpec,
        threads: int = 1,
        request_overhead_ms: float = 0.0,
    ):
        self.device = device
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest
        self.session = session
        self.measured = session.measured
        self.power = power
        self.threads = threads
        self.request_overhead_ms = request_overhead_ms  # HTTP + serving cost of one request, beyond the RTT
        self.link: LinkSpec = session.link

    def run(self, locations: Sequence[str], x: np.ndarray, jpeg: bytes | None = None) -> Execution:
        """Execute ``locations`` (mobile/cloud per segment) on the float model input ``x``.

        ``jpeg``: the input photo as JPEG bytes, uploaded instead of ``x`` when segment 0 runs on the
        cloud (``x`` is then only its shape's witness: the server computes on the decoded JPEG).
        """
        segments = self.manifest.segments
        if len(locations) != len(segments):
            raise DeviceError(f"schedule has {len(locations)} locations for {len(segments)} segments")
        jpeg = jpeg if locations and locations[0] == "cloud" else None
        label = schedule_label(locations) + (JPEG_SUFFIX if jpeg is not None else "")
        result = Execution(label=label, output=np.empty(0, np.float32))
        started = time.perf_counter()
        current = x
        producer: TensorSpec | None = None
        for stage in split_stages(locations):
            current = adapt_tensor(current, producer, segments[stage.start].input)
            if stage.side == "mobile":
                current = self._mobile(stage.indices, current, result)
            else:
                current = self._cloud(stage.start, stage.stop, current, result, jpeg)
            producer = segments[stage.stop - 1].output
        result.output = finish_output(current, segments[-1].output)
        result.wall_ms = (time.perf_counter() - started) * 1e3
        return result

    def _mobile(self, indices: list[int], x: np.ndarray, result: Execution) -> np.ndarray:
        t0 = time.perf_counter()
        run = self.device.run_chain(self.bundle_dir, indices, x)
        wall_ms = (time.perf_counter() - t0) * 1e3
        segment_ms, energy_mj = [float(v) for v in run.segment_ms], float(run.energy_mj)
        compute_ms = float(sum(segment_ms))
        if not math.isfinite(energy_mj):
            energy_mj = self.power.compute_energy_mj(compute_ms, self.threads)
        result.device_compute_ms += compute_ms
        result.device_overhead_ms += max(0.0, wall_ms - compute_ms)
        result.device_segment_ms.extend(segment_ms)
        result.mobile_compute_mj += energy_mj
        return np.asarray(run.output)

    def _cloud(
        self, start: int, stop: int, x: np.ndarray, result: Execution, jpeg: bytes | None = None
    ) -> np.ndarray:
        done = self.session.exchange(x, from_segment=start, to_segment=stop, jpeg=jpeg)
        reply, wire_ms, paced = done.reply, done.wire_ms, done.paced_ms
        server_ms, queue_ms = done.server_ms, done.queue_ms
        up_bytes, down_bytes = int(reply.request_bytes), int(reply.response_bytes)
        # share the exchange between the directions as the measured link predicts them
        half_rtt = radio.one_way_ms(self.measured.rtt_ms, self.request_overhead_ms)  # ms per direction
        up_burst, down_burst = self.session.shaped.burst_bytes  # bytes the shaper lets through at once
        up_serial = radio.serial_ms(up_bytes, self.measured.up_mbps, up_burst)  # ms
        down_serial = radio.serial_ms(down_bytes, self.measured.down_mbps, down_burst)
        expected_up, expected_down = half_rtt + up_serial, half_rtt + down_serial
        up_ms = wire_ms * expected_up / max(expected_up + expected_down, 1e-9)
        down_ms = wire_ms - up_ms
        result.upload_ms += up_ms
        result.download_ms += down_ms
        result.server_ms += server_ms
        result.queue_ms += queue_ms
        result.paced_ms += paced
        result.up_bytes += up_bytes
        result.down_bytes += down_bytes
        result.requests += 1
        result.server_segment_ms.extend(float(v) for v in reply.segment_ms)
        # energy: radio while bits flow (transfer minus one-way delay), waiting for server + delays
        link = self.link
        radio_up_ms = max(0.0, up_ms - half_rtt)
        radio_down_ms = max(0.0, down_ms - half_rtt)
        # P = alpha * Mbps + beta over the active time t is alpha * Mbit + beta * t (see harness.links.radio)
        result.mobile_radio_mj += radio.radio_energy_mj(
            up_bytes, radio_up_ms, link.alpha_up_mw_per_mbps, link.beta_mw
        )
        result.mobile_radio_mj += radio.radio_energy_mj(
            down_bytes, radio_down_ms, link.alpha_down_mw_per_mbps, link.beta_mw
        )
        waited_ms = server_ms + queue_ms + min(up_ms, half_rtt) + min(down_ms, half_rtt)
        result.mobile_waiting_mj += self.power.waiting_mw * waited_ms / 1e3
        return np.asarray(reply.output)
