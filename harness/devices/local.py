"""The host itself as a device: LiteRT in-process, energy from a device profile's power model.

Useful as the "mobile" side when no phone is at hand (the profile's power model turns latency into
energy). It times the backward pass of each segment (training plans) on the same builtin-op backward
``.tflite`` that ADB devices time (:mod:`models.backward`); TensorFlow is imported only to export it, inside
:meth:`LocalDevice.measure_backward`.

The profile's ``compute_slowdown`` emulates a phone slower than the host: every measured inference (and
backward pass) time ``t`` is padded to ``slowdown * t`` by sleeping, and the padded time is reported;
energy from the power model follows it (see :mod:`harness.devices.slowdown`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.devices.base import ChainRun, DeviceCapabilities, DeviceFacts, EnergySource, PushResult
from harness.devices.slowdown import ComputePadding
from harness.devices.telemetry import DeviceState, read_local_state
from harness.specs import DeviceSpec, load_device
from models.benchmark import BenchmarkSettings, BenchmarkStats, LoopSettings, random_tensor, run_loop
from models.bundle import MANIFEST_NAME, read_manifest
from models.errors import DeviceError
from models.runtime import SegmentChain, SegmentRunner, backend_name, interpreter_class

if TYPE_CHECKING:
    import keras

    from models.graph import LayerGraph

__all__ = ["LocalDevice"]


class LocalDevice:
    """LiteRT on the host; ``spec`` (name or :class:`DeviceSpec`) gives power for energy."""

    serial = "local"

    def __init__(self, spec: str | DeviceSpec = "generic-phone"):
        self.spec = spec if isinstance(spec, DeviceSpec) else load_device(spec)
        self._chains: dict[tuple[str, int], SegmentChain] = {}
        self._energy_source: EnergySource = ""

    @property
    def name(self) -> str:
        return "local"

    def facts(self) -> DeviceFacts:
        """The host's own facts (platform, CPU count); SDK 0 because it is not Android."""
        return DeviceFacts(
            serial="local",
            kind="local",
            model=platform.node() or "host",
            manufacturer=platform.system(),
            abi=platform.machine(),
            sdk=0,
            release=platform.release(),
            cpu_count=os.cpu_count() or 1,
            boot_completed=True,
        )

    def push_bundle(self, bundle_dir: Path) -> PushResult:
        """Nothing to copy: the bundle's files are used where they are."""
        bundle_dir = Path(bundle_dir).resolve()
        manifest = read_manifest(bundle_dir)
        names = [seg.file for seg in manifest.segments] + (
            [manifest.whole_file] if manifest.whole_file else []
        )
        names.append(MANIFEST_NAME)
        return PushResult(
            remote_dir=str(bundle_dir),
            files={name: str(bundle_dir / name) for name in names},
            pushed=[],
            skipped=names,
            bytes_pushed=0,
            seconds=0.0,
        )

    @contextlib.contextmanager
    def energy_session(self) -> Iterator[None]:
        """No battery to unplug: energy comes from the power model."""
        yield

    def benchmark(self, model_path: str, settings: BenchmarkSettings) -> BenchmarkStats:
        """The benchmark_model loop in-process (:func:`models.benchmark.run_loop`).

        ``use_xnnpack`` is LiteRT's default here (XNNPACK on); ``taskset_mask`` (hex) pins this process
        for the duration on Linux.
        """
        started = time.perf_counter()
        with _pinned(settings.taskset_mask):
            t0 = time.perf_counter()
            runner = SegmentRunner(Path(model_path), num_threads=settings.threads)
            init_us = (time.perf_counter() - t0) * 1e6
            x = runner.random_input(np.random.default_rng(0))
            padding = ComputePadding(self.spec.compute_slowdown)
            loop = run_loop(lambda: runner.run(x), settings, pad=padding.pad, init_us=init_us)
        stats = loop.stats(settings)
        stats.wall_s = time.perf_counter() - started
        self._energy_source = "power-model" if settings.measure_energy else ""
        if settings.measure_energy:
            power = self.spec.compute_power_mw(settings.threads)
            # the median, like the latency column, so energy / latency is the profile's power exactly
            energy = self.spec.compute_energy_mj(stats.median_ms, settings.threads)
            stats = stats.with_energy(energy, power)
        return stats

    def _chain(self, bundle_dir: Path, threads: int) -> SegmentChain:
        key = (str(Path(bundle_dir).resolve()), threads)
        if key not in self._chains:
            manifest = read_manifest(Path(bundle_dir), verify_hashes=True)  # a modified bundle is refused
            self._chains[key] = SegmentChain(Path(bundle_dir), num_threads=threads, manifest=manifest)
        return self._chains[key]

    def run_chain(
        self,
        bundle_dir: Path,
        segment_indices: list[int],
        x: np.ndarray,
        *,
        threads: int = 1,
        warmup_runs: int = 1,
    ) -> ChainRun:
        """Run contiguous segments in-process; energy = power model × each segment's (padded) time.

        The chains stay loaded between calls, so they are warm after the first: ``warmup_runs`` is
        accepted for the protocol and ignored.

        One interpreter thread: each segment's time is the phone's, ``slowdown`` x its CPU time (a loaded
        host does not inflate it), slept out after it. More threads: with a ``compute_slowdown`` the
        chain sleeps ``(slowdown - 1)`` × its compute time afterwards and each segment's time is
        reported stretched by the same measured factor.
        """
        indices = list(segment_indices)
        if not indices or indices != list(range(indices[0], indices[0] + len(indices))):
            raise DeviceError(f"segment indices {indices} are not a contiguous, non-empty range")
        result = self._chain(bundle_dir, threads).run(x, indices[0], indices[-1] + 1)
        padding = ComputePadding(self.spec.compute_slowdown)
        if threads == 1:  # the phone's clock: slowdown x CPU time (see harness.devices.slowdown)
            segment_ms = [
                padding.phone_time(cpu / 1e3, wall / 1e3) * 1e3
                for cpu, wall in zip(result.segment_cpu_ms, result.segment_ms, strict=True)
            ]
        else:
            compute_s = sum(result.segment_ms) / 1e3
            stretch = padding.pad(compute_s) / compute_s if compute_s > 0 else 1.0
            segment_ms = [ms * stretch for ms in result.segment_ms]
        energy = sum(self.spec.compute_energy_mj(ms, threads) for ms in segment_ms)
        return ChainRun(result.output, segment_ms, energy)

    def measure_backward(
        self,
        model: keras.Model,
        graph: LayerGraph,
        start: int,
        stop: int,
        *,
        runs: int = 10,
        threads: int = 1,
    ) -> tuple[float, float]:
        """Median time (ms) and power-model energy (mJ) of the backward pass of segments ``start..stop-1``.

        Times the same BUILTIN-only backward ``.tflite`` that ADB devices time with ``benchmark_model``
        (:mod:`models.backward`), with LiteRT, so backward/forward ratios come from one runtime (not
        TensorFlow eager, whose per-op overhead dwarfs small segments' arithmetic).
        """
        from models.backward import backward_artifact

        artifact = backward_artifact(model, graph, start, stop)
        interpreter = interpreter_class()(model_path=str(artifact.path), num_threads=threads)
        interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for detail in interpreter.get_input_details():  # the segment input and the upstream gradient
            shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
            interpreter.set_tensor(detail["index"], random_tensor(shape, dtype, rng))
        loop = LoopSettings(runs=max(runs, 1), warmup_runs=1, warmup_min_secs=0.0, min_secs=0.0)
        padding = ComputePadding(self.spec.compute_slowdown)
        times = run_loop(interpreter.invoke, loop, pad=padding.pad).samples_us
        ms = float(np.median(times)) / 1e3
        return ms, self.spec.compute_energy_mj(ms, threads)

    @property
    def capabilities(self) -> DeviceCapabilities:
        """Backward timing (the builtin-op backward ``.tflite`` on LiteRT); no battery, a power model."""
        return DeviceCapabilities(backward=True, battery=False, telemetry=True)

    def device_state(self) -> DeviceState:
        """The host's own cpufreq and thermal sysfs (empty where a VM exposes none)."""
        return read_local_state()

    def runner_info(self) -> tuple[str, str]:
        """(the in-process interpreter, no command line)."""
        return self.runtime, ""

    @property
    def last_energy_source(self) -> EnergySource:
        return self._energy_source

    @property
    def runtime(self) -> str:
        """Name of the interpreter used (``litert`` normally), tagged with the emulated slowdown.

        The tag is part of a profile row's resume key, so rows measured at another
        ``compute_slowdown`` are remeasured rather than reused (``litert`` / ``litert-x4``).
        """
        slowdown = self.spec.compute_slowdown
        return backend_name() if slowdown == 1.0 else f"{backend_name()}-x{slowdown:g}"

    def close(self) -> None:
        self._chains.clear()

    def __repr__(self) -> str:
        return f"LocalDevice(spec={self.spec.name!r})"


@contextlib.contextmanager
def _pinned(mask: str | None) -> Iterator[None]:
    """Pin the process to the CPUs of a hex mask (``"f0"``) on Linux, restoring the old affinity."""
    if not mask or not hasattr(os, "sched_setaffinity"):
        yield
        return
    bits = int(mask, 16)
    cpus = {i for i in range(bits.bit_length()) if bits >> i & 1}
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)
