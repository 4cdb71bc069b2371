"""What every device offers: the :class:`Device` protocol and the values it returns.

A device is a transport (in-process, ADB) + a runner (LiteRT in-process, ``benchmark_model`` and
``jointdnn_chain_runner`` on the device) + a parser (:mod:`harness.devices.benchmark_output`). The
profiling job and the end-to-end runner only talk to this protocol, so a real phone, an Android Studio
emulator, the emulated Android device and the host itself are interchangeable.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from models.benchmark import BenchmarkSettings, BenchmarkStats

if TYPE_CHECKING:
    import keras

    from harness.devices.telemetry import DeviceState
    from models.graph import LayerGraph

__all__ = [
    "BenchmarkSettings",
    "BenchmarkStats",
    "ChainRun",
    "Device",
    "DeviceCapabilities",
    "DeviceFacts",
    "PushResult",
    "device_slug",
]

DeviceKind = Literal["local", "adb"]
EnergySource = Literal["battery", "power-model", "perfetto-rails", "perfetto-battery", ""]  # "" = none


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


@dataclass(frozen=True)
class DeviceCapabilities:
    """What a device can measure beyond forward timings; the profiling job asks, never guesses."""

    backward: bool = False  # can time the backward pass of a segment (training plans)
    battery: bool = False  # has a fuel gauge to sample (energy may still fall back to the power model)
    telemetry: bool = False  # device_state() reads clocks, temperatures and the power supply


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

    @property
    def runtime(self) -> str:
        """What runs the models (``litert``, ``benchmark_model``): part of a profile row's resume key."""
        ...

    @property
    def capabilities(self) -> DeviceCapabilities:
        """What this device can measure."""
        ...

    @property
    def last_energy_source(self) -> EnergySource:
        """Where the energy of the last :meth:`benchmark` came from."""
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

    def benchmark(self, model_path: str, settings: BenchmarkSettings) -> BenchmarkStats:
        """Time one ``.tflite`` (a device path as returned by :meth:`push_bundle`)."""
        ...

    def measure_backward(
        self, model: keras.Model, graph: LayerGraph, start: int, stop: int, *, runs: int, threads: int
    ) -> tuple[float, float]:
        """Median time (ms) and energy (mJ) of the backward pass of segments ``start..stop-1``.

        Only where ``capabilities.backward``; elsewhere it raises :class:`~models.errors.DeviceError`.
        """
        ...

    def run_chain(
        self,
        bundle_dir: Path,
        segment_indices: list[int],
        x: np.ndarray,
        *,
        threads: int = 1,
        warmup_runs: int = 1,
    ) -> ChainRun:
        """Run contiguous segments of a bundle on ``x`` (already in the first segment's input dtype).

        ``warmup_runs`` untimed runs first make the reported segment times warm (a device whose chains
        stay loaded between calls may ignore it).
        """
        ...

    def close(self) -> None:
        """Release connections and interpreters."""
        ...

    def device_state(self) -> DeviceState:
        """CPU clocks, thermal zones and power supply now (one cheap read; see harness.devices.telemetry)."""
        ...

    def runner_info(self) -> tuple[str, str]:
        """(identity of the runner binary, e.g. ``sha256:<16 hex>``; the last benchmark's command line)."""
        ...
