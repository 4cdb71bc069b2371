"""What every device offers: the :class:`Device` protocol and the values it returns.

A device is a transport (in-process, ADB) + a runner (LiteRT in-process, ``benchmark_model`` and
``jointdnn_chain_runner`` on the device) + a parser (:mod:`harness.devices.benchmark_output`). The
profiling job and the end-to-end runner only talk to this protocol, so a real phone, an Android Studio
emulator, the emulated Android device and the host itself are interchangeable.
"""

from __future__ import annotations

import math
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BenchmarkStats",
    "ChainRun",
    "Device",
    "DeviceFacts",
    "PushResult",
    "device_slug",
]

DeviceKind = Literal["local", "adb"]

_Z10 = 1.2815515655446004  # standard normal quantile of 0.90: p90 ~ mean + z * std


def device_slug(text: str) -> str:
    """A file-system-safe name (``[A-Za-z0-9._-]``) for folders such as ``device_profiles/measured/<slug>``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return slug or "device"


@dataclass(frozen=True)
class DeviceFacts:
    """What a device says about itself (``getprop`` on Android; the host's own facts for ``local``)."""

    serial: str  # how to reach it: adb serial ("emulator-5554", "127.0.0.1:40123") or "local"
    kind: DeviceKind
    model: str  # ro.product.model
    manufacturer: str = "unknown"  # ro.product.manufacturer
    abi: str = "unknown"  # ro.product.cpu.abi, e.g. "arm64-v8a"
    sdk: int = 0  # ro.build.version.sdk
    release: str = ""  # ro.build.version.release, e.g. "14"
    cpu_count: int = 1  # online CPUs
    boot_completed: bool = True  # sys.boot_completed == "1"
    hardware_serial: str = ""  # ro.serialno: stable across adb transports (USB / wireless)

    @property
    def device_id(self) -> str:
        """Stable name of the device for profile folders and the ``device`` column.

        Built from the model and the hardware serial, so a phone keeps its name whether it is reached
        over USB or wireless adb (whose serial is an ever-changing ``host:port``).
        """
        if self.kind == "local":
            return "local"
        return device_slug(f"{self.model}-{self.hardware_serial or self.serial}")


@dataclass
class BenchmarkStats:
    """Statistics of one ``benchmark_model`` run (or its in-process equivalent), times in µs as printed.

    ``count``..``std_us`` come from the measured-run ``count= first= curr= min= max= avg= std=`` line;
    ``p5_us``/``median_us``/``p95_us`` only from versions that print percentiles; the ``*_inference_us``
    fields from the ``Inference timings in us:`` (or older ``Average inference timings``) summary line.
    Fields that a version does not print are NaN. ``energy_mj``/``power_mw`` are filled by devices that
    measure energy (NaN otherwise); ``wall_s`` is the harness-side wall time of the whole call.
    """

    count: int = 0
    first_us: float = math.nan
    curr_us: float = math.nan
    min_us: float = math.nan
    max_us: float = math.nan
    avg_us: float = math.nan
    std_us: float = math.nan
    p5_us: float = math.nan
    median_us: float = math.nan
    p95_us: float = math.nan
    init_us: float = math.nan  # interpreter creation + allocation
    first_inference_us: float = math.nan
    warmup_avg_us: float = math.nan
    inference_avg_us: float = math.nan
    output_format: str = ""  # which known format was recognised (for diagnostics)
    energy_mj: float = math.nan  # energy above idle per inference
    power_mw: float = math.nan  # power above idle while the runner computed
    wall_s: float = math.nan  # harness wall time of the call (push excluded)
    samples_us: list[float] = field(default_factory=list)  # per-run times when the runner exposes them
    warmup_count: int = 0  # runs of the warm-up phase (its stats line), 0 when not printed
    warmup_min_secs: float = 0.0  # "Running benchmark for at least N iterations and at least S seconds"
    min_secs: float = 0.0  # the same header of the measured phase

    @property
    def runner_s(self) -> float:
        """Time the runner itself accounts for (s): init + warm-up phase + measured phase.

        A phase lasts at least its runs × average and at least the seconds its header promised (the
        tool keeps iterating until both hold), so each phase counts ``max(count · avg, min_secs)``.
        """
        init_s = 0.0 if math.isnan(self.init_us) else self.init_us / 1e6
        warmup_s = 0.0 if math.isnan(self.warmup_avg_us) else self.warmup_count * self.warmup_avg_us / 1e6
        measured_s = 0.0 if math.isnan(self.mean_ms) else self.count * self.mean_ms / 1e3
        return init_s + max(warmup_s, self.warmup_min_secs) + max(measured_s, self.min_secs)

    @property
    def mean_ms(self) -> float:
        """Mean latency (ms): the measured run's ``avg``, else the summary line's ``Inference (avg)``."""
        value = self.avg_us if not math.isnan(self.avg_us) else self.inference_avg_us
        return value / 1e3

    @property
    def median_ms(self) -> float:
        """Median latency (ms): exact from per-run samples or ``median=``, else the mean."""
        if self.samples_us:
            return float(np.median(self.samples_us)) / 1e3
        if not math.isnan(self.median_us) and (self.median_us > 0 or not self.mean_ms > 0):
            return self.median_us / 1e3
        return self.mean_ms  # no median printed, or it rounded to 0 µs on a sub-µs segment

    def quantile_ms(self, q: float) -> float:
        """Latency quantile ``q`` in (0, 1) in ms.

        Exact from per-run samples when available; otherwise estimated from what ``benchmark_model``
        prints: a normal approximation ``avg ± z·std`` clamped to ``[min, max]`` (``median`` ± the
        printed p5/p95 spread when percentiles exist). The tool does not print p10/p90 itself.
        """
        if self.samples_us:
            return float(np.quantile(self.samples_us, q)) / 1e3
        center = self.median_ms * 1e3
        if not math.isnan(self.p5_us) and not math.isnan(self.p95_us):
            # p5/p95 are 1.645 sigma away; p10/p90 1.2816 sigma: scale the printed spread
            side = self.p95_us if q > 0.5 else self.p5_us
            value = center + (side - center) * (abs(_normal_z(q)) / 1.6448536269514722)
        elif not math.isnan(self.std_us):
            value = self.mean_ms * 1e3 + _normal_z(q) * self.std_us
        else:
            value = center
        low = self.min_us if not math.isnan(self.min_us) else -math.inf
        high = self.max_us if not math.isnan(self.max_us) else math.inf
        return float(min(max(value, low), high)) / 1e3

    @property
    def p10_ms(self) -> float:
        return self.quantile_ms(0.10)

    @property
    def p90_ms(self) -> float:
        return self.quantile_ms(0.90)

    def with_energy(self, energy_mj: float, power_mw: float) -> BenchmarkStats:
        """A copy with the energy fields set."""
        return replace(self, energy_mj=energy_mj, power_mw=power_mw)


def _normal_z(q: float) -> float:
    """Standard normal quantile (exact at 0.1/0.9/0.05/0.95; erfinv-free rational approx elsewhere)."""
    table = {0.1: -_Z10, 0.9: _Z10, 0.05: -1.6448536269514722, 0.95: 1.6448536269514722, 0.5: 0.0}
    if q in table:
        return table[q]
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)


class ChainRun(NamedTuple):
    """Result of :meth:`Device.run_chain`; unpacks as ``(output, segment_ms, energy_mj)``."""

    output: np.ndarray  # output of the last segment, in its own dtype (int8 for int8 bundles)
    segment_ms: list[float]  # per-segment compute time as measured by the runner (ms)
    energy_mj: float  # energy above idle of the whole call (mJ); NaN when unknown


@dataclass(frozen=True)
class PushResult:
    """Where a bundle lives on the device and what the push did."""

    remote_dir: str  # device-side folder holding manifest.json and the .tflite files
    files: dict[str, str]  # bundle file name -> device path
    pushed: list[str]  # file names that were (re)sent
    skipped: list[str]  # file names already on the device with the same size + sha256
    bytes_pushed: int  # total bytes sent
    seconds: float  # wall time of the whole push (hash checks included)

    def path(self, name: str) -> str:
        """Device path of a bundle file (``segment_003.tflite``, ``whole.tflite``)."""
        return self.files[name]


@runtime_checkable
class Device(Protocol):
    """A device that can hold a bundle, benchmark one ``.tflite`` file and run a chain of segments.

    Implementations: :class:`harness.devices.local.LocalDevice` (in-process LiteRT, power-model energy)
    and :class:`harness.devices.adb.AdbDevice` (any ADB device: phone, Android Studio emulator, the
    emulated Android device of :mod:`harness.emulator`).
    """

    serial: str

    @property
    def name(self) -> str:
        """Stable device id (folder name under ``device_profiles/measured``)."""
        ...

    def facts(self) -> DeviceFacts:
        """Model, ABI, SDK, CPU count, boot state."""
        ...

    def push_bundle(self, bundle_dir: Path) -> PushResult:
        """Make a bundle's files available on the device, skipping files that are already there."""
        ...

    def energy_session(self) -> AbstractContextManager[None]:
        """Context in which energy can be measured (battery unplugged on Android; no-op locally)."""
        ...

    def benchmark(
        self,
        model_path: str,
        *,
        threads: int = 1,
        runs: int = 50,
        warmup_runs: int = 1,
        warmup_min_secs: float = 0.5,
        min_secs: float = 0.0,
        max_secs: float = 150.0,
        use_xnnpack: bool | None = None,
        taskset_mask: str | None = None,
        measure_energy: bool = False,
    ) -> BenchmarkStats:
        """Time one ``.tflite`` (a device path as returned by :meth:`push_bundle`)."""
        ...

    def run_chain(
        self, bundle_dir: Path, segment_indices: list[int], x: np.ndarray, *, threads: int = 1
    ) -> ChainRun:
        """Run contiguous segments of a bundle on ``x`` (already in the first segment's input dtype)."""
        ...

    def close(self) -> None:
        """Release connections and interpreters."""
        ...
