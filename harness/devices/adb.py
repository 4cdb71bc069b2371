"""Any Android device reachable through an adb server: phones, Android Studio emulators, the emulated device.

Commands go out as argument lists (each argument shell-quoted by adbutils), over ``shell,v2`` so exit
codes and stderr come back. Transient adb failures (dropped connection, timeout) are retried with
exponential backoff; when the device is no longer listed after the retries,
:class:`~models.errors.DeviceDisconnectedError` is raised so a job can stop cleanly and be resumed.

Files go to ``/data/local/tmp/jointdnn/<bundle>/``; a file already there with the same size and
sha256 (``sha256sum`` on the device) is not sent again. ``benchmark_model`` must be present at
``/data/local/tmp/benchmark_model`` or supplied by the user for the device's ABI (``--benchmark-binary``
or ``JOINTDNN_BENCHMARK_MODEL``). Split runs use that same stock binary when its ``--help`` lists
``--input_layer_value_files`` and ``--output_filepath`` (:mod:`harness.devices.split_run`); older builds
fall back to ``jointdnn_chain_runner`` (``JOINTDNN_CHAIN_RUNNER``), pre-installed on the emulated device.
"""

from __future__ import annotations

import io
import logging
import math
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import adbutils
import numpy as np
from adbutils.errors import AdbError

from harness.devices.base import (
    BenchmarkSettings,
    BenchmarkStats,
    ChainRun,
    DeviceCapabilities,
    DeviceFacts,
    EnergySource,
    PushResult,
)
from harness.devices.battery import (
    BATTERY_DIR,
    BatterySampler,
    PowerSample,
    battery_unplugged,
    discharge_factor,
    energy_per_inference_mj,
    excess_power_mw,
    parse_battery_reading,
)
from harness.devices.benchmark_output import parse_benchmark_output
from harness.devices.split_run import (
    SPLIT_FLAGS,
    SegmentCall,
    input_tensor_name,
    parse_stage_output,
    split_groups,
    stage_command,
    supports_split_flags,
)
from harness.devices.telemetry import STATE_COMMAND, DeviceState, parse_state
from harness.specs import DeviceSpec
from models.bundle import MANIFEST_NAME, BundleManifest, check_file_hash, file_sha256, read_manifest
from models.errors import (
    BenchmarkBinaryMissingError,
    DeviceDisconnectedError,
    DeviceError,
    DeviceNotFoundError,
)
from models.runtime import convert_tensor

__all__ = [
    "BENCHMARK_BINARY_ENV",
    "CHAIN_RUNNER_ENV",
    "REMOTE_ROOT",
    "AdbDevice",
    "RetryPolicy",
    "ShellResult",
    "adb_client",
    "list_serials",
]

log = logging.getLogger(__name__)

REMOTE_TMP = "/data/local/tmp"
REMOTE_ROOT = f"{REMOTE_TMP}/jointdnn"  # bundles go to REMOTE_ROOT/<bundle folder name>/
BENCHMARK_REMOTE = f"{REMOTE_TMP}/benchmark_model"
CHAIN_RUNNER_REMOTE = f"{REMOTE_TMP}/jointdnn_chain_runner"
BENCHMARK_BINARY_ENV = "JOINTDNN_BENCHMARK_MODEL"  # host path of benchmark_model for the device's ABI
CHAIN_RUNNER_ENV = "JOINTDNN_CHAIN_RUNNER"  # host path of jointdnn_chain_runner for the device's ABI
_SYNC_CHUNK = 64 * 1024  # bytes per sync DATA packet (the protocol's maximum)
# Failures in transit, worth retrying: the adb server or the device dropped or stalled the connection.
# Other OSErrors (PermissionError, FileNotFoundError, ... on the host) are local and fail at once.
_TRANSIENT = (AdbError, ConnectionError, TimeoutError, socket.timeout, EOFError)

T = TypeVar("T")

if TYPE_CHECKING:
    import keras

    from models.graph import LayerGraph


def adb_client() -> adbutils.AdbClient:
    """An adbutils client for the adb server at ANDROID_ADB_SERVER_HOST/PORT (default 127.0.0.1:5037)."""
    return adbutils.AdbClient()


def list_serials(client: adbutils.AdbClient | None = None) -> list[str]:
    """Serials of every device the adb server lists in state ``device`` (ready)."""
    client = client or adb_client()
    try:
        return [info.serial for info in client.list() if info.state == "device"]
    except _TRANSIENT as exc:
        raise DeviceError(f"cannot reach the adb server: {exc} (is `adb start-server` running?)") from None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry an adb operation that failed in transit."""

    attempts: int = 4  # total tries
    backoff_s: float = 0.5  # first pause; doubled after each failure
    command_timeout_s: float = 600.0  # socket timeout of one command (s)


@dataclass(frozen=True)
class ShellResult:
    """Exit code and output of one device command."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + ("\n" + self.stderr if self.stderr else "")


class AdbDevice:
    """A device behind the adb server, selected by serial (``ANDROID_SERIAL`` respected).

    ``power_spec`` (a :class:`~harness.specs.DeviceSpec`) is the fallback energy model when
    the fuel gauge shows no drain (Android Studio emulators, a phone on USB power).
    """

    def __init__(
        self,
        serial: str | None = None,
        *,
        benchmark_binary: Path | None = None,
        chain_runner: Path | None = None,
        power_spec: DeviceSpec | None = None,
        retry: RetryPolicy | None = None,
        energy_window_s: float = 1.0,
        sample_period_s: float = 0.02,
        client: adbutils.AdbClient | None = None,
        perfetto: bool = False,
    ):
        self._client = client or adb_client()
        self.retry = retry or RetryPolicy()
        self.serial = self._resolve_serial(serial)
        self._device = self._client.device(self.serial)
        env_binary = os.environ.get(BENCHMARK_BINARY_ENV)
        self.benchmark_binary = benchmark_binary or (Path(env_binary) if env_binary else None)
        env_runner = os.environ.get(CHAIN_RUNNER_ENV)
        self.chain_runner = chain_runner or (Path(env_runner) if env_runner else None)
        self.power_spec = power_spec
        self.energy_window_s = energy_window_s  # minimum run length when measuring energy (s)
        self.sample_period_s = sample_period_s
        self._facts: DeviceFacts | None = None
        self._binaries_ok: set[str] = set()
        self._pushed: dict[tuple[str, str], PushResult] = {}  # (bundle dir, manifest sha) -> push
        self._unplug_depth = 0
        self._idle: list[PowerSample] = []
        self._idle_at = -math.inf
        self._sign = 0.0  # calibrated discharge factor (sign x unit scale), 0 = not yet
        self._energy_source: EnergySource = ""  # of the last benchmark
        self._split_runner = ""  # what runs split stages, decided on first use (see split_runner)
        self.last_command: list[str] = []  # the last benchmark_model command line (profile rows)
        self._runner_digest: str | None = None  # sha256 of the device's benchmark_model, once read
        self.perfetto = perfetto  # energy from Perfetto rails / battery counters (harness.devices.perfetto)

    # ------------------------------------------------------------------ selection and transport

    def _resolve_serial(self, serial: str | None) -> str:
        wanted = serial or os.environ.get("ANDROID_SERIAL") or None
        try:
            infos = self._client.list()
        except _TRANSIENT as exc:
            raise DeviceError(f"cannot reach the adb server: {exc}") from None
        states = {info.serial: info.state for info in infos}
        if wanted is None:
            ready = [s for s, state in states.items() if state == "device"]
            if not ready:
                raise DeviceNotFoundError(
                    "no Android device is connected: plug one in (USB debugging on), `adb connect HOST:PORT`, "
                    "or start the emulated device with `jointdnn emulator start`"
                )
            if len(ready) > 1:
                raise DeviceNotFoundError(
                    f"several devices are connected ({', '.join(ready)}): pick one with --device SERIAL "
                    "or ANDROID_SERIAL"
                )
            return ready[0]
        if wanted not in states:
            known = ", ".join(states) or "none"
            raise DeviceNotFoundError(f"no device with serial {wanted!r} (connected: {known})")
        if states[wanted] != "device":
            raise DeviceNotFoundError(
                f"device {wanted} is {states[wanted]!r}, not ready (unauthorized: accept the USB debugging "
                "prompt on the phone; offline: reconnect it)"
            )
        return wanted

    def is_connected(self) -> bool:
        """Whether the adb server still lists this device as ready."""
        try:
            return self.serial in list_serials(self._client)
        except DeviceError:
            return False

    def _with_retry(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``; retry transient adb failures with backoff; raise DeviceDisconnectedError at the end.

        Only failures in transit (:data:`_TRANSIENT`) are retried; a local ``OSError`` fails at once.
        """
        delay = self.retry.backoff_s
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            try:
                return action()
            except _TRANSIENT as exc:
                last = exc
                log.info("%s on %s failed (attempt %d): %s", what, self.serial, attempt + 1, exc)
                if attempt + 1 < self.retry.attempts:
                    time.sleep(delay)
                    delay *= 2
            except OSError as exc:  # local (a file that is not there, not readable): retrying can't help
                raise DeviceError(f"{what} on {self.serial} failed on this host: {exc}") from exc
        if not self.is_connected():
            raise DeviceDisconnectedError(
                f"device {self.serial} disconnected during {what} (after {self.retry.attempts} tries): {last}"
            )
        raise DeviceError(f"{what} on {self.serial} kept failing after {self.retry.attempts} tries: {last}")

    def shell(self, args: list[str], *, timeout_s: float | None = None, check: bool = False) -> ShellResult:
        """Run a command given as an argument list; returns exit code, stdout and stderr (shell v2)."""
        timeout = timeout_s or self.retry.command_timeout_s

        def run() -> ShellResult:
            result = self._device.shell2(args, timeout=timeout, v2=True)
            return ShellResult(int(result.returncode), result.stdout or "", result.stderr or "")

        result = self._with_retry(args[0], run)
        if check and result.exit_code != 0:
            raise DeviceError(
                f"`{' '.join(args)}` failed on {self.serial} with exit code {result.exit_code}: "
                f"{(result.stderr or result.stdout).strip()[-400:]}"
            )
        return result

    # ------------------------------------------------------------------ facts

    def facts(self) -> DeviceFacts:
        """Model, ABI, SDK, CPU count and boot state from getprop (cached after the first call)."""
        if self._facts is None:
            props = self.getprops()
            cpus = self.shell(["cat", "/sys/devices/system/cpu/possible"])
            cpu_count = _count_cpus(cpus.stdout) if cpus.exit_code == 0 else 0
            if cpu_count == 0:
                nproc = self.shell(["nproc"])
                cpu_count = (
                    int(nproc.stdout.strip())
                    if nproc.exit_code == 0 and nproc.stdout.strip().isdigit()
                    else 1
                )
            self._facts = DeviceFacts(
                serial=self.serial,
                kind="adb",
                model=props.get("ro.product.model", "unknown"),
                manufacturer=props.get("ro.product.manufacturer", "unknown"),
                abi=props.get("ro.product.cpu.abi", "unknown"),
                sdk=int(props.get("ro.build.version.sdk", "0") or 0),
                release=props.get("ro.build.version.release", ""),
                cpu_count=cpu_count,
                boot_completed=props.get("sys.boot_completed", "") == "1",
                hardware_serial=props.get("ro.serialno", ""),
            )
        return self._facts

    def getprops(self) -> dict[str, str]:
        """All system properties (``getprop`` output ``[key]: [value]`` lines)."""
        out = self.shell(["getprop"], check=True).stdout
        props: dict[str, str] = {}
        for line in out.splitlines():
            if line.startswith("[") and "]: [" in line:
                key, _, value = line.partition("]: [")
                props[key[1:]] = value.rstrip().removesuffix("]")
        return props

    @property
    def name(self) -> str:
        """Stable device id (model + hardware serial) for profile folders."""
        return self.facts().device_id

    # ------------------------------------------------------------------ files

    def push_file(self, source: Path | bytes, remote_path: str, *, mode: int = 0o644) -> int:
        """Send a file (or bytes) with the sync protocol in 64 KiB packets; returns bytes sent."""

        def send() -> int:
            return self._sync_send(source, remote_path, mode)

        return self._with_retry(f"push {remote_path}", send)

    def _sync_send(self, source: Path | bytes, remote_path: str, mode: int) -> int:
        conn = self._device.open_transport(timeout=self.retry.command_timeout_s)
        try:
            conn.send_command("sync:")
            conn.check_okay()
            header = f"{remote_path},{0o100000 | mode}".encode()
            sock = conn.conn
            sock.sendall(b"SEND" + struct.pack("<I", len(header)) + header)
            total = 0
            for chunk in _chunks(source):
                sock.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                total += len(chunk)
            sock.sendall(b"DONE" + struct.pack("<I", int(time.time())))
            status = conn.read_exact(4)
            if status != b"OKAY":
                length = struct.unpack("<I", conn.read_exact(4))[0]
                message = conn.read_exact(length).decode(errors="replace")
                raise DeviceError(f"push to {remote_path} on {self.serial} failed: {message}")
            return total
        finally:
            conn.close()

    def pull_bytes(self, remote_path: str) -> bytes:
        """Read a device file into memory."""
        return self._with_retry(f"pull {remote_path}", lambda: self._device.sync.read_bytes(remote_path))

    def remote_sha256(self, paths: list[str]) -> dict[str, str]:
        """sha256 of device files that exist (``sha256sum`` on the device); missing files are absent."""
        if not paths:
            return {}
        result = self.shell(["sha256sum", *paths])
        hashes: dict[str, str] = {}
        for line in result.stdout.splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) == 2 and len(parts[0]) == 64:
                hashes[parts[1].strip().lstrip("*")] = parts[0]
        return hashes

    def remote_sizes(self, paths: list[str]) -> dict[str, int]:
        """Sizes (bytes) of the device files that exist."""
        sizes: dict[str, int] = {}
        for path in paths:
            info = self._with_retry(f"stat {path}", lambda p=path: self._device.sync.stat(p))  # type: ignore[misc]
            if info.mode != 0:
                sizes[path] = int(info.size)
        return sizes

    def push_bundle(self, bundle_dir: Path) -> PushResult:
        """Send a bundle's manifest and .tflite files, skipping ones already there (same size + sha256)."""
        bundle_dir = Path(bundle_dir)
        manifest = read_manifest(bundle_dir)
        key = (str(bundle_dir.resolve()), file_sha256(bundle_dir / MANIFEST_NAME))
        if key in self._pushed:
            return self._pushed[key]
        started = time.perf_counter()
        remote_dir = f"{REMOTE_ROOT}/{bundle_dir.name}"
        names = [segment.file for segment in manifest.segments]
        names += [manifest.whole_file] if manifest.whole_file else []
        # hash the files themselves: they must be the ones the manifest names (a modified bundle is refused)
        local_hashes = {name: file_sha256(bundle_dir / name) for name in names}
        claimed = {seg.file: seg.sha256 for seg in manifest.segments}
        if manifest.whole_file:
            claimed[manifest.whole_file] = manifest.whole_sha256 or ""
        for name, digest in local_hashes.items():
            check_file_hash(bundle_dir / name, claimed[name], digest)
        local_hashes[MANIFEST_NAME] = key[1]
        files = {name: f"{remote_dir}/{name}" for name in local_hashes}
        self.shell(["mkdir", "-p", remote_dir], check=True)
        sizes = self.remote_sizes(list(files.values()))
        same_size = [
            name for name, remote in files.items() if sizes.get(remote) == (bundle_dir / name).stat().st_size
        ]
        remote_hashes = self.remote_sha256([files[name] for name in same_size])
        pushed: list[str] = []
        skipped: list[str] = []
        sent = 0
        for name, remote in files.items():
            if name in same_size and remote_hashes.get(remote) == local_hashes[name]:
                skipped.append(name)
                continue
            sent += self.push_file(bundle_dir / name, remote)
            pushed.append(name)
        result = PushResult(
            remote_dir=remote_dir,
            files=files,
            pushed=pushed,
            skipped=skipped,
            bytes_pushed=sent,
            seconds=time.perf_counter() - started,
        )
        self._pushed[key] = result
        return result

    # ------------------------------------------------------------------ binaries

    def _ensure_binary(self, remote: str, local: Path | None, what: str, how: str) -> str:
        if remote in self._binaries_ok:
            return remote
        present = self.shell(["ls", remote]).exit_code == 0
        if local is not None and (
            not present or self.remote_sha256([remote]).get(remote) != file_sha256(local)
        ):
            if not local.is_file():
                raise BenchmarkBinaryMissingError(f"{what} binary {local} does not exist")
            self.push_file(local, remote, mode=0o755)
            self.shell(["chmod", "755", remote])
            present = True
        if not present:
            abi = self.facts().abi
            raise BenchmarkBinaryMissingError(
                f"{what} is not on {self.serial} ({remote}) and none was supplied: {how} for ABI {abi}"
            )
        self._binaries_ok.add(remote)
        return remote

    def ensure_benchmark_model(self) -> str:
        """Device path of ``benchmark_model``, pushing the user's binary if given; clear error otherwise."""
        return self._ensure_binary(
            BENCHMARK_REMOTE,
            self.benchmark_binary,
            "benchmark_model",
            "download TFLite's android_aarch64/android_arm benchmark_model (or build it with bazel) "
            f"and pass it with --benchmark-binary PATH or {BENCHMARK_BINARY_ENV}=PATH",
        )

    def ensure_chain_runner(self) -> str:
        """Device path of ``jointdnn_chain_runner`` (pre-installed on the emulated device)."""
        return self._ensure_binary(
            CHAIN_RUNNER_REMOTE,
            self.chain_runner,
            "jointdnn_chain_runner",
            f"supply a build for the phone with {CHAIN_RUNNER_ENV}=PATH (the emulated device has one built in)",
        )

    # ------------------------------------------------------------------ battery

    def dumpsys_battery(self, args: list[str]) -> ShellResult:
        """``dumpsys battery <args>`` (``unplug``, ``reset``, ``set level 50``, or none for the state)."""
        return self.shell(["dumpsys", "battery", *args], check=True)

    @contextmanager
    def energy_session(self) -> Iterator[None]:
        """Battery unplugged for the duration (re-entrant; only the outermost level unplugs/resets)."""
        if self._unplug_depth:
            self._unplug_depth += 1
            try:
                yield
            finally:
                self._unplug_depth -= 1
            return
        self._unplug_depth = 1
        try:
            with battery_unplugged(self.dumpsys_battery):
                yield
        finally:
            self._unplug_depth = 0
            self._idle_at = -math.inf

    def read_battery(self) -> tuple[float, float]:
        """One fuel-gauge reading: (current µA with the vendor's sign, voltage µV)."""
        # one connection per reading (no version query, shell v1): halves the latency of a sample
        conn = self._client.make_connection(timeout=10.0)
        try:
            conn.send_command(f"host:transport:{self.serial}")
            conn.check_okay()
            conn.send_command(f"shell:cat {BATTERY_DIR}/current_now {BATTERY_DIR}/voltage_now")
            conn.check_okay()
            text = conn.read_until_close()
        finally:
            conn.close()
        return parse_battery_reading(str(text))

    def _idle_baseline(self) -> list[PowerSample]:
        """Idle samples, re-measured when older than a minute (the baseline drifts with temperature)."""
        if time.monotonic() - self._idle_at > 60.0:
            sampler = BatterySampler(self.read_battery, period_s=self.sample_period_s)
            self._idle = sampler.collect(max(0.25, 12 * self.sample_period_s))
            self._idle_at = time.monotonic()
            if self._sign == 0:  # sign and unit (µA or mA) of this fuel gauge
                self._sign = discharge_factor([s.current_ua for s in self._idle])
        return self._idle

    # ------------------------------------------------------------------ running

    @property
    def runtime(self) -> str:
        return "benchmark_model"

    @property
    def capabilities(self) -> DeviceCapabilities:
        """A fuel gauge to sample; backward passes as builtin-op ``.tflite`` files that ``benchmark_model`` times."""
        return DeviceCapabilities(backward=True, battery=True, telemetry=True)

    @property
    def last_energy_source(self) -> EnergySource:
        return self._energy_source

    def measure_backward(
        self, model: keras.Model, graph: LayerGraph, start: int, stop: int, *, runs: int, threads: int
    ) -> tuple[float, float]:
        """Median time (ms) and energy (mJ) of the backward pass of segments ``start..stop-1`` on the device.

        The backward is exported as a BUILTIN-only ``.tflite`` (:mod:`models.backward`: inputs the
        segment input and the upstream gradient, outputs the input and weight gradients), pushed to
        ``REMOTE_ROOT/backward/`` and timed by ``benchmark_model`` like a forward segment, energy included.
        """
        from models.backward import backward_artifact

        artifact = backward_artifact(model, graph, start, stop)
        remote = f"{REMOTE_ROOT}/backward/{artifact.meta['sha256'][:24]}.tflite"
        if self.remote_sha256([remote]).get(remote) != artifact.meta["sha256"]:
            self.shell(["mkdir", "-p", f"{REMOTE_ROOT}/backward"], check=True)
            self.push_file(artifact.path, remote)
        settings = BenchmarkSettings(
            runs=max(1, runs),
            warmup_runs=1,
            warmup_min_secs=0.0,
            min_secs=0.0,
            threads=threads,
            measure_energy=True,
        )
        stats = self.benchmark(remote, settings)
        return stats.median_ms, stats.energy_mj

    def benchmark(self, model_path: str, settings: BenchmarkSettings) -> BenchmarkStats:
        """Run ``benchmark_model`` on a device path and parse its output (stdout + stderr).

        With ``measure_energy`` the run lasts at least ``energy_window_s`` and the fuel gauge is
        sampled in parallel; energy falls back to the power profile when no drain is visible.
        """
        binary = self.ensure_benchmark_model()
        threads, measure_energy = settings.threads, settings.measure_energy
        min_secs = max(settings.min_secs, self.energy_window_s) if measure_energy else settings.min_secs
        args = [
            binary,
            f"--graph={model_path}",
            f"--num_threads={threads}",
            f"--num_runs={settings.runs}",
            f"--warmup_runs={settings.warmup_runs}",
            f"--warmup_min_secs={settings.warmup_min_secs:g}",
            f"--min_secs={min_secs:g}",
            f"--max_secs={settings.max_secs:g}",
        ]
        if settings.run_delay_s > 0:
            args.append(f"--run_delay={settings.run_delay_s:g}")
        if settings.use_xnnpack is not None:
            args.append(f"--use_xnnpack={'true' if settings.use_xnnpack else 'false'}")
        if settings.taskset_mask:
            args = ["taskset", settings.taskset_mask, *args]
        timeout = settings.max_secs + 60.0
        self._energy_source = ""
        self.last_command = args
        if not measure_energy:
            started = time.perf_counter()
            result = self.shell(args, timeout_s=timeout)
            stats = self._parse(result, args)
            stats.wall_s = time.perf_counter() - started
            return stats
        if self.perfetto and (traced := self._benchmark_perfetto(args, settings)) is not None:
            return traced
        with self.energy_session():
            idle = self._idle_baseline()
            with BatterySampler(self.read_battery, period_s=self.sample_period_s, streams=2) as sampler:
                started = time.monotonic()
                result = self.shell(args, timeout_s=timeout)
                ended = time.monotonic()
            wall_s = ended - started
        stats = self._parse(result, args)
        stats.wall_s = wall_s
        excess = excess_power_mw(
            idle, sampler.within(started, ended), self._sign or 1, window=(started, ended)
        )
        if excess is not None:
            self._energy_source = "battery"
            inferences = stats.count + (stats.warmup_count or settings.warmup_runs)
            energy = energy_per_inference_mj(excess, wall_s, inferences)
            power = energy / stats.mean_ms * 1e3 if stats.mean_ms > 0 else excess
        elif self.power_spec is not None:
            self._energy_source = "power-model"
            power = self.power_spec.compute_power_mw(threads)
            energy = self.power_spec.compute_energy_mj(stats.mean_ms, threads)
        else:
            self._energy_source = ""
            return stats
        return stats.with_energy(energy, power)

    def _benchmark_perfetto(self, args: list[str], settings: BenchmarkSettings) -> BenchmarkStats | None:
        """The benchmark inside a Perfetto power trace; None (and perfetto off) where that gives nothing."""
        from harness.devices.perfetto import capture_power_trace, window_excess_mw

        with self.energy_session(), capture_power_trace(self) as capture:
            if not capture.started:
                result = None
            else:
                started = time.monotonic()
                result = self.shell(args, timeout_s=settings.max_secs + 60.0)
                wall_s = time.monotonic() - started
        window = None
        if capture.trace is not None:
            window = window_excess_mw(capture.trace, capture.idle, capture.run)
        if result is None or window is None or window.excess_mw <= 0:
            log.warning(
                "%s: no Perfetto power data (%s); sampling the fuel gauge instead",
                self.serial,
                capture.error or "no drain visible",
            )
            self.perfetto = False
            return None  # the unit is measured again with sysfs sampling
        stats = self._parse(result, args)
        stats.wall_s = wall_s
        self._energy_source = "perfetto-rails" if window.source == "perfetto-rails" else "perfetto-battery"
        run_s = (capture.run[1] - capture.run[0]) / 1e9
        energy = energy_per_inference_mj(
            window.excess_mw, run_s, stats.count + (stats.warmup_count or settings.warmup_runs)
        )
        power = energy / stats.mean_ms * 1e3 if stats.mean_ms > 0 else window.excess_mw
        return stats.with_energy(energy, power)

    def _parse(self, result: ShellResult, args: list[str]) -> BenchmarkStats:
        if result.exit_code != 0:
            raise DeviceError(
                f"benchmark_model exited with code {result.exit_code} on {self.serial} "
                f"({' '.join(args[-7:])}): {result.output.strip()[-500:]}"
            )
        return parse_benchmark_output(result.stdout + "\n" + result.stderr)

    def split_runner(self) -> str:
        """What runs split stages here: ``benchmark_model`` when its ``--help`` lists the split-run flags
        (``--input_layer_value_files``, ``--output_filepath``), else ``jointdnn_chain_runner``.

        Raises :class:`~models.errors.BenchmarkBinaryMissingError` naming what to push when neither is
        usable. Decided once per device object.
        """
        if self._split_runner:
            return self._split_runner
        why = ""
        try:
            binary = self.ensure_benchmark_model()
        except BenchmarkBinaryMissingError:
            why = f"benchmark_model is not on the device ({BENCHMARK_REMOTE})"
        else:
            helped = self.shell([binary, "--help"])
            if supports_split_flags(helped.output):
                self._split_runner = "benchmark_model"
                return self._split_runner
            why = f"{binary} lacks {' and '.join(SPLIT_FLAGS)} (an older build)"
        try:
            self.ensure_chain_runner()
        except BenchmarkBinaryMissingError:
            raise BenchmarkBinaryMissingError(
                f"cannot run split stages on {self.serial}: {why}, and jointdnn_chain_runner is not there "
                f"either. Push a recent benchmark_model for ABI {self.facts().abi} (one whose --help lists "
                f"{', '.join(SPLIT_FLAGS)}) with --benchmark-binary PATH or {BENCHMARK_BINARY_ENV}=PATH, or a "
                f"jointdnn_chain_runner with {CHAIN_RUNNER_ENV}=PATH"
            ) from None
        log.info("%s: %s; split stages use jointdnn_chain_runner", self.serial, why)
        self._split_runner = "jointdnn_chain_runner"
        return self._split_runner

    def run_chain(
        self,
        bundle_dir: Path,
        segment_indices: list[int],
        x: np.ndarray,
        *,
        threads: int = 1,
        warmup_runs: int = 1,
    ) -> ChainRun:
        """Run contiguous segments on the device: with ``benchmark_model`` (raw tensor files, see
        :mod:`harness.devices.split_run`) where it has the split-run flags, else ``jointdnn_chain_runner``.

        Both are fresh processes each time, so their interpreters are cold (XNNPACK packs weights on the
        first invoke); ``warmup_runs`` untimed runs first (``--warmup_runs``) make the reported segment
        times warm, like the profiles from ``benchmark_model``, LocalDevice's cached chains and the
        server's. 0 gives a single cold run (and omits the flag for a chain runner build without it).
        """
        indices = list(segment_indices)
        if not indices or indices != list(range(indices[0], indices[0] + len(indices))):
            raise DeviceError(f"segment indices {indices} are not a contiguous, non-empty range")
        push = self.push_bundle(bundle_dir)
        manifest = read_manifest(Path(bundle_dir))
        if self.split_runner() == "benchmark_model":
            output, segment_ms = self._run_stage_with_benchmark_model(
                Path(bundle_dir), push, manifest, indices, x, threads=threads, warmup_runs=warmup_runs
            )
        else:
            output, segment_ms = self._run_stage_with_chain_runner(
                push, manifest, indices, x, threads=threads, warmup_runs=warmup_runs
            )
        energy = math.nan
        if self.power_spec is not None:
            energy = sum(self.power_spec.compute_energy_mj(ms, threads) for ms in segment_ms)
        return ChainRun(output, segment_ms, energy)

    def _run_stage_with_benchmark_model(
        self,
        bundle_dir: Path,
        push: PushResult,
        manifest: BundleManifest,
        indices: list[int],
        x: np.ndarray,
        *,
        threads: int,
        warmup_runs: int,
    ) -> tuple[np.ndarray, list[float]]:
        """One ``sh -c`` command line per requantization-free run of segments; raw bytes in and out."""
        tag = uuid.uuid4().hex[:12]
        temporary: list[str] = []
        segment_ms: list[float] = []
        current = np.ascontiguousarray(x)
        try:
            for group in split_groups(manifest, indices):
                first = manifest.segments[group[0]]
                if group[0] != indices[0]:  # int8 hand-over with different parameters: requantize here
                    producer = manifest.segments[group[0] - 1].output
                    current = convert_tensor(
                        current, producer.quant, np.dtype(first.input.dtype), first.input.quant
                    )
                source = f"{push.remote_dir}/in_{tag}_{group[0]}.bin"
                temporary.append(source)
                self.push_file(np.ascontiguousarray(current).tobytes(), source)
                calls: list[SegmentCall] = []
                for k in group:
                    segment = manifest.segments[k]
                    target = f"{push.remote_dir}/out_{tag}_{k}.bin"
                    temporary.append(target)
                    calls.append(
                        SegmentCall(
                            index=k,
                            graph=push.path(segment.file),
                            input_name=input_tensor_name(str(bundle_dir / segment.file), segment.sha256),
                            input_shape=list(segment.input.shape),
                            input_path=source,
                            output_path=target,
                        )
                    )
                    source = target
                line = stage_command(BENCHMARK_REMOTE, calls, threads=threads, warmup_runs=warmup_runs)
                result = self.shell(["sh", "-c", line])
                if result.exit_code != 0:
                    aborted = " (aborted: SIGABRT)" if result.exit_code == 134 else ""
                    raise DeviceError(
                        f"benchmark_model failed on {self.serial} with exit code {result.exit_code}{aborted} "
                        f"running segments {group}: {result.output.strip()[-500:]}"
                    )
                logs = parse_stage_output(result.stdout, group)
                segment_ms += [parse_benchmark_output(logs[k]).mean_ms for k in group]
                last = manifest.segments[group[-1]].output
                data = self.pull_bytes(source)
                if len(data) != last.nbytes:
                    raise DeviceError(
                        f"benchmark_model wrote {len(data)} bytes to {source}, expected {last.nbytes} "
                        f"({last.dtype}{last.shape}): does this build write --output_filepath?"
                    )
                current = np.frombuffer(data, dtype=np.dtype(last.dtype)).reshape(last.shape)
        finally:
            if temporary:
                self.shell(["rm", "-f", *temporary])
        return current, segment_ms

    def _run_stage_with_chain_runner(
        self,
        push: PushResult,
        manifest: BundleManifest,
        indices: list[int],
        x: np.ndarray,
        *,
        threads: int,
        warmup_runs: int,
    ) -> tuple[np.ndarray, list[float]]:
        """``jointdnn_chain_runner`` (.npy in, .npy out, per-segment times on stdout)."""
        runner = self.ensure_chain_runner()
        graphs = ",".join(push.path(manifest.segments[k].file) for k in indices)
        tag = uuid.uuid4().hex[:12]
        remote_in = f"{push.remote_dir}/in_{tag}.npy"
        remote_out = f"{push.remote_dir}/out_{tag}.npy"
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(x), allow_pickle=False)
        self.push_file(buffer.getvalue(), remote_in)
        try:
            result = self.shell(
                [
                    runner,
                    f"--graphs={graphs}",
                    f"--input={remote_in}",
                    f"--output={remote_out}",
                    f"--num_threads={threads}",
                    *([f"--warmup_runs={warmup_runs}"] if warmup_runs > 0 else []),
                ]
            )
            if result.exit_code != 0:
                raise DeviceError(
                    f"jointdnn_chain_runner failed on {self.serial}: {result.output.strip()[-500:]}"
                )
            segment_ms = _parse_segment_ms(result.stdout)
            output = np.load(io.BytesIO(self.pull_bytes(remote_out)), allow_pickle=False)
        finally:
            self.shell(["rm", "-f", remote_in, remote_out])
        return output, segment_ms

    def device_state(self) -> DeviceState:
        """Clocks, temperatures and power supply in ONE shell command (:data:`STATE_COMMAND`)."""
        started = time.monotonic()
        result = self.shell(["sh", "-c", STATE_COMMAND])  # grep exits 2 when some file is unreadable
        return parse_state(result.stdout, (started + time.monotonic()) / 2)

    def runner_info(self) -> tuple[str, str]:
        """(``sha256:<16 hex>`` of the device's benchmark_model, the last benchmark's command line)."""
        if self._runner_digest is None:
            self._runner_digest = self.remote_sha256([BENCHMARK_REMOTE]).get(BENCHMARK_REMOTE, "")
        digest = self._runner_digest
        return (f"sha256:{digest[:16]}" if digest else ""), " ".join(self.last_command)

    def close(self) -> None:
        """Nothing to release: every command opens its own adb connection."""

    def __repr__(self) -> str:
        return f"AdbDevice({self.serial!r})"


def _chunks(source: Path | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray):
        for offset in range(0, len(source), _SYNC_CHUNK):
            yield bytes(source[offset : offset + _SYNC_CHUNK])
        return
    with Path(source).open("rb") as handle:
        while chunk := handle.read(_SYNC_CHUNK):
            yield chunk


def _count_cpus(possible: str) -> int:
    """CPU count from ``/sys/devices/system/cpu/possible`` (``0-7`` or ``0-3,6``)."""
    count = 0
    for part in possible.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            count += int(high or low) - int(low) + 1
        except ValueError:
            return 0
    return count


def _parse_segment_ms(stdout: str) -> list[float]:
    for line in stdout.splitlines():
        if line.startswith("segment_ms:"):
            return [float(v) for v in line.partition(":")[2].strip().split(",") if v.strip()]
    raise DeviceError(f"jointdnn_chain_runner printed no 'segment_ms:' line: {stdout.strip()[-300:]}")
