"""The profiling job: time every segment of a bundle (and the whole model) on a device, row by row.

Flow for one device: push the bundle (unchanged files are skipped) → inside an energy session (battery
unplugged on Android, reset afterwards whatever happens) benchmark each segment and the whole model →
append one :class:`~models.profile_rows.ProfileRow` per unit to
``<out_root>/<device id>/<model>-<quant>.csv`` as soon as it is measured (atomic append).

Resumable: a unit is skipped when the CSV already holds a row for it with the same artifact sha256,
threads, runtime and at least the requested runs (``force`` remeasures). When the device vanishes
the device layer retries with backoff; then the job stops with
:class:`~models.errors.DeviceDisconnectedError` naming the command that resumes it — every row measured
so far is already on disk.

Device state (where ``capabilities.telemetry``): before each unit an optional cooldown gate waits for the
device to cool down (``cooldown_temp_c`` / ``cooldown_s``), then a snapshot of clocks, temperatures and
power supply is taken before and after the unit and recorded in the row
(:mod:`harness.devices.telemetry`). A unit that ran throttled, warmed up a lot, or ran while charging is
warned about; battery energy measured while charging is invalid and recorded as NaN.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.devices.base import BenchmarkSettings, Device, PushResult
from harness.devices.telemetry import DeviceState, cool_down, state_changes
from models.benchmark import CHAIN_IDLE_S, chain_medians
from models.bundle import BundleManifest, read_manifest
from models.errors import ConversionError, DeviceDisconnectedError, JointDNNError, ProfileError
from models.profile_rows import ProfileRow, Unit, append_rows, measured_row, read_profile, units_of
from models.runtime import convert_tensor

if TYPE_CHECKING:
    import keras

    from models.graph import LayerGraph

__all__ = [
    "DEFAULT_OUT_ROOT",
    "InChain",
    "JobListener",
    "JobResult",
    "ProfileSettings",
    "Unit",
    "completed_units",
    "export_for_profiling",
    "measure_in_chain",
    "profile_csv_path",
    "profile_device",
    "profile_devices",
]

log = logging.getLogger(__name__)

DEFAULT_OUT_ROOT = Path("device_profiles") / "measured"


@dataclass(frozen=True)
class ProfileSettings(BenchmarkSettings):
    """How to measure: the benchmark settings (handed to ``Device.benchmark`` as they are) plus what to record.

    ``measure_energy`` is on by default here: sample the battery (AdbDevice) or apply the power model
    (LocalDevice).
    """

    measure_energy: bool = True
    backward: bool = True  # time the gradient of each segment where the device can (training plans)
    backward_runs: int = 10
    whole_model: bool = True  # also benchmark whole.tflite (segment -1)
    force: bool = False  # remeasure rows that are already in the CSV
    chain_runs: int = 7  # calls of run_chain over the whole chain for the in-chain columns (0 = none)
    cooldown_temp_c: float | None = None  # wait before each unit until the hottest zone is <= this (°C)
    cooldown_s: float | None = None  # with cooldown_temp_c the longest wait (s); alone a fixed pause


@dataclass
class JobResult:
    """What one device's job did; ``measured``/``skipped`` hold unit indices (-1 = whole model)."""

    device: str
    csv_path: Path
    measured: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    rows: list[ProfileRow] = field(default_factory=list)  # rows written by this run
    push: PushResult | None = None
    wall_s: float = 0.0  # whole job, push included (s)
    runner_s: float = 0.0  # what the runner itself reports for the measured units (s)
    energy_source: str = ""
    warnings: list[str] = field(default_factory=list)  # device-state warnings (throttling, charging)


class JobListener:
    """Progress hooks (the CLI's rich bar implements them); all no-ops here. Called from worker threads."""

    def started(self, device: str, total: int, done: int) -> None:
        """``total`` units, of which ``done`` are already in the CSV."""

    def unit_done(self, device: str, row: ProfileRow, measured: bool) -> None:
        """A unit was measured (or skipped because it was already in the CSV)."""

    def finished(self, device: str, result: JobResult | None, error: BaseException | None) -> None:
        """The device's job ended (``error`` set when it failed)."""


def profile_csv_path(out_root: Path, device_id: str, model: str, quant: str) -> Path:
    """``<out_root>/<device id>/<model>-<quant>.csv``."""
    return Path(out_root) / device_id / f"{model}-{quant}.csv"


def completed_units(
    csv_path: Path, units: Sequence[Unit], settings: ProfileSettings, runtime: str, *, need_backward: bool
) -> set[int]:
    """Indices of units already measured with the same artifact hash and settings."""
    if settings.force or not Path(csv_path).is_file():
        return set()
    try:
        frame = read_profile(csv_path)
    except ProfileError as exc:
        log.warning("ignoring unreadable profile %s: %s", csv_path, exc)
        return set()
    done: set[int] = set()
    for unit in units:
        rows = frame[
            (frame["segment"] == unit.index)
            & (frame["artifact_sha256"].astype(str) == unit.sha256)
            & (frame["threads"] == settings.threads)
            & (frame["runtime"].astype(str) == runtime)
            & (frame["runs"] >= settings.runs)
        ]
        if need_backward and unit.index >= 0:
            rows = rows[rows["backward_ms"].notna()]
        if settings.chain_runs > 0 and unit.index >= 0:
            rows = rows[rows["chain_ms_median"].notna()]
        if not rows.empty:
            done.add(unit.index)
    return done


def _backward_ranges(
    manifest: BundleManifest,
) -> tuple[keras.Model, LayerGraph, dict[int, tuple[int, int]]] | None:
    """Keras model, its graph and, per bundle segment, the graph segment range it covers (or None)."""
    from models.graph import analyze
    from models.zoo import load_model

    try:
        model = load_model(manifest.model)
    except (JointDNNError, OSError, ValueError) as exc:  # a user model that is not reachable by name
        log.warning("no backward pass for %s: cannot load the Keras model (%s)", manifest.model, exc)
        return None
    graph = analyze(model)
    starts = {seg.first_layer: seg.index for seg in graph.segments}
    stops = {seg.last_layer: seg.index + 1 for seg in graph.segments}
    ranges: dict[int, tuple[int, int]] = {}
    one_to_one = manifest.num_segments == graph.num_segments  # a bundle of every cut point
    for seg in manifest.segments:
        if seg.first_layer in starts and seg.last_layer in stops:
            ranges[seg.index] = (starts[seg.first_layer], stops[seg.last_layer])
        elif one_to_one:  # auto-named layers (``global_average_pooling2d_1``) differ between loads
            ranges[seg.index] = (seg.index, seg.index + 1)
    return model, graph, ranges


def profile_device(
    device: Device,
    bundle_dir: Path,
    settings: ProfileSettings | None = None,
    *,
    out_root: Path = DEFAULT_OUT_ROOT,
    listener: JobListener | None = None,
    resume_hint: str = "",
    cancel: threading.Event | None = None,
) -> JobResult:
    """Profile every unit of ``bundle_dir`` on ``device``, appending rows to its CSV as they finish."""
    settings = settings or ProfileSettings()
    listener = listener or JobListener()
    started = time.perf_counter()
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    device_id = device.name
    csv_path = profile_csv_path(out_root, device_id, manifest.model, manifest.quant)
    result = JobResult(device=device_id, csv_path=csv_path)
    units = units_of(manifest, whole_model=settings.whole_model)
    runtime = device.runtime
    need_backward = settings.backward and device.capabilities.backward
    done = completed_units(csv_path, units, settings, runtime, need_backward=need_backward)
    listener.started(device_id, len(units), len(done))
    todo = [u for u in units if u.index not in done]
    result.skipped = [u.index for u in units if u.index in done]
    try:
        if todo:
            result.push = device.push_bundle(bundle_dir)
        backward = _backward_ranges(manifest) if need_backward and any(u.index >= 0 for u in todo) else None
        last_state: DeviceState | None = None  # the previous unit's "after" snapshot
        with device.energy_session():
            in_chain = None
            if settings.chain_runs > 0 and any(u.index >= 0 for u in todo):
                in_chain = measure_in_chain(
                    device, bundle_dir, manifest, settings.chain_runs, settings.threads
                )
            for unit in todo:
                if cancel is not None and cancel.is_set():  # Ctrl-C in the main thread (parallel jobs)
                    raise KeyboardInterrupt
                assert result.push is not None
                cooled, before = _state_before(device, settings, last_state)
                stats = device.benchmark(result.push.path(unit.file), settings)
                row = measured_row(
                    manifest, unit, stats, threads=settings.threads, device=device_id, runtime=runtime
                )
                if in_chain is not None and unit.index >= 0:
                    in_chain.fill(row)
                row.energy_source = device.last_energy_source
                if before is not None:
                    last_state = _record_state(device, settings, row, before, cooled, result.warnings)
                if backward is not None and unit.index in backward[2]:
                    start, stop = backward[2][unit.index]
                    try:
                        row.backward_ms, row.backward_energy_mj = device.measure_backward(
                            backward[0],
                            backward[1],
                            start,
                            stop,
                            runs=settings.backward_runs,
                            threads=settings.threads,
                        )
                    except ConversionError as exc:  # a layer without a builtin backward: forward only
                        log.warning(
                            "segment %d of %s: no backward pass (%s)", unit.index, manifest.model, exc
                        )
                append_rows(csv_path, [row])
                result.rows.append(row)
                result.measured.append(unit.index)
                result.runner_s += stats.runner_s
                result.energy_source = device.last_energy_source
                listener.unit_done(device_id, row, True)
    except DeviceDisconnectedError as exc:
        saved = len(done) + len(result.measured)
        hint = (
            resume_hint
            or f"jointdnn profile {manifest.model} --device {device.serial} --quant {manifest.quant}"
        )
        error = DeviceDisconnectedError(
            f"{exc}. {saved} of {len(units)} rows are saved in {csv_path}; reconnect the device and run "
            f"`{hint}` to resume (measured rows are skipped)"
        )
        listener.finished(device_id, None, error)
        raise error from None
    except BaseException as exc:
        listener.finished(device_id, None, exc)
        raise
    result.wall_s = time.perf_counter() - started
    listener.finished(device_id, result, None)
    return result


MOBILE_CHAIN_METHOD = (
    "device run_chain: {runs} calls over the whole chain, each after {idle_ms:.0f} ms idle (the device's "
    "runner: one untimed warm-up pass, then one timed pass); chain_ms_median / chain_energy_mj = the "
    "segment's time / energy share in the timed passes (medians scaled to the median pass); overhead_ms = 0: a mobile stage's latency is the sum of its runner's "
    "segment times (runner start and adb push/pull around it are kept apart as device_overhead_ms)"
)


@dataclass(frozen=True)
class InChain:
    """Per-segment costs measured in chain context on a device (arrays of shape (n,))."""

    chain_ms: np.ndarray
    chain_mj: np.ndarray
    overhead_ms: float
    method: str

    def fill(self, row: ProfileRow) -> None:
        """Set ``row``'s chain columns (a segment row)."""
        row.chain_ms_median = float(self.chain_ms[row.segment])
        row.chain_energy_mj = float(self.chain_mj[row.segment])
        row.overhead_ms = self.overhead_ms
        row.overhead_method = self.method


def measure_in_chain(
    device: Device, bundle_dir: Path, manifest: BundleManifest, runs: int, threads: int
) -> InChain:
    """Time every segment in chain context: ``runs`` calls of ``device.run_chain`` over the whole chain.

    This is how a schedule's mobile stages run (:class:`~harness.runner.execute.ScheduleExecutor`), so
    each segment is timed once per pass, after its predecessor — not in a hot loop of its own, where its
    weights stay in cache (issue #12: MobileNetV2 int8 segments cost x1.4 their hot-loop time in a chain).
    The input is uniform noise in the model's input range, in the first segment's dtype.
    """
    first = manifest.segments[0].input
    rng = np.random.default_rng(0)
    x = convert_tensor(rng.random(first.shape, dtype=np.float32), None, first.dtype, first.quant)
    indices = list(range(manifest.num_segments))
    times, energies = [], []
    for _ in range(runs):
        time.sleep(CHAIN_IDLE_S)  # a stage finds the device idle (see models.benchmark.CHAIN_IDLE_S)
        run = device.run_chain(bundle_dir, indices, x, threads=threads, warmup_runs=1)
        segment_ms = np.asarray(run.segment_ms, dtype=np.float64)  # (n,)
        total = float(segment_ms.sum())
        energy = float(run.energy_mj)
        share = segment_ms / total if total > 0 else np.full(segment_ms.shape, 1.0 / segment_ms.size)
        times.append(segment_ms)
        energies.append(share * energy if math.isfinite(energy) else np.full(segment_ms.shape, math.nan))
    return InChain(
        chain_ms=chain_medians(np.asarray(times)),
        chain_mj=chain_medians(np.asarray(energies)),
        overhead_ms=0.0,
        method=MOBILE_CHAIN_METHOD.format(runs=runs, idle_ms=CHAIN_IDLE_S * 1e3),
    )


_STATE_REUSE_S = 1.0  # s: the previous unit's closing snapshot serves as the next one's opening one


def _state_before(
    device: Device, settings: ProfileSettings, previous: DeviceState | None
) -> tuple[float, DeviceState | None]:
    """The cooldown gate (if asked), then the snapshot before a unit; (seconds waited, state).

    Without a gate, the previous unit's closing snapshot is reused when it is under a second old (the
    units follow each other at once), which halves the snapshots a job takes.
    """
    if not device.capabilities.telemetry:
        return 0.0, None
    waited = 0.0
    if settings.cooldown_temp_c is not None or settings.cooldown_s:
        waited = cool_down(
            device.device_state, max_temp_c=settings.cooldown_temp_c, wait_s=settings.cooldown_s
        ).waited_s
    elif previous is not None and time.monotonic() - previous.t_s < _STATE_REUSE_S:
        return 0.0, previous
    return waited, device.device_state()


def _record_state(
    device: Device,
    settings: ProfileSettings,
    row: ProfileRow,
    before: DeviceState,
    cooled_s: float,
    warnings: list[str],
) -> DeviceState:
    """Fill the row's device-state columns from the snapshots around the unit; warn about what changed.

    Returns the closing snapshot.
    """
    after = device.device_state()
    throttled, notes = state_changes(before, after)
    big_before, big_after = before.big, after.big
    row.cpu_governor = after.governor_text()
    row.cpu_freq_khz = after.freq_text()
    if big_before is not None and big_after is not None:
        row.big_cpu_max_khz_start = float(big_before.max_khz)
        row.big_cpu_max_khz_end = float(big_after.max_khz)
        row.big_cpu_hw_max_khz = float(big_after.hw_max_khz)
    row.temp_c_start, row.temp_c_end = before.hottest_c, after.hottest_c
    row.thermal_zones_c = after.zones_text()
    row.battery_status = after.battery_status
    row.charging = before.charging or after.charging
    row.throttled = throttled
    row.cooldown_s = round(cooled_s, 3)
    row.taskset_mask = settings.taskset_mask or ""
    row.runner_binary, row.runner_command = device.runner_info()
    if row.charging and device.capabilities.battery and settings.measure_energy:
        row.energy_mj = row.power_mw = math.nan
        row.energy_source = ""
        notes.append(
            f"charging ({after.battery_status or 'charger online'}): energy recorded as NaN "
            "(a charger fed the battery; unplug the cable and use wireless adb)"
        )
    row.state_notes = "; ".join(notes)
    if notes:
        label = "whole model" if row.segment < 0 else f"segment {row.segment}"
        message = f"{row.device} {label}: {row.state_notes}"
        log.warning("%s", message)
        warnings.append(message)
    return after


def export_for_profiling(model: str, quant: str, bundle_root: Path, *, cache_dir: Path | None = None) -> Path:
    """Export (through the artifact cache) ``model`` at ``quant`` to ``<bundle_root>/<model>-<quant>``."""
    from models.export import export_bundle

    out = Path(bundle_root) / f"{Path(model).stem if '/' in model else model}-{quant}"
    export_bundle(model, quant, out, cache_dir=cache_dir)
    return out


def profile_devices(
    devices: Sequence[Device],
    bundle_dir: Path,
    settings: ProfileSettings | None = None,
    *,
    out_root: Path = DEFAULT_OUT_ROOT,
    listener: JobListener | None = None,
    resume_hint: Callable[[Device], str] | None = None,
) -> list[JobResult | BaseException]:
    """Profile several devices in parallel, one worker thread each; one result or error per device.

    Ctrl-C stops every worker after its current unit (rows saved, batteries reset), then re-raises.
    """
    cancel = threading.Event()

    def work(device: Device) -> JobResult | BaseException:
        try:
            hint = resume_hint(device) if resume_hint else ""
            return profile_device(
                device,
                bundle_dir,
                settings,
                out_root=out_root,
                listener=listener,
                resume_hint=hint,
                cancel=cancel,
            )
        except Exception as exc:  # reported per device; the other devices keep going
            return exc

    unique: dict[str, Device] = {}
    for device in devices:  # the same phone over USB and wireless adb reports the same id
        if device.name in unique:
            log.warning(
                "%s and %s are the same device (%s); profiling it once",
                unique[device.name].serial,
                device.serial,
                device.name,
            )
            continue
        unique[device.name] = device
    devices = list(unique.values())
    if len(devices) == 1:
        return [work(devices[0])]
    with ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="profile") as pool:
        futures = [pool.submit(work, device) for device in devices]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            # let every worker finish its current unit, save its row and reset its battery
            cancel.set()
            wait(futures)
            raise
