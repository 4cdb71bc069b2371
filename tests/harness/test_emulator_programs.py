"""benchmark_model and jointdnn_chain_runner on the emulated device, driven through adb; battery power."""

from __future__ import annotations

import io
import itertools
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import adbutils
import numpy as np
import pytest

from harness.emulator import EmulatedDevice
from harness.emulator.programs import BUILTIN_PROGRAMS
from harness.emulator.shell import Shell
from harness.emulator.system import AndroidSystem
from harness.specs import DeviceSpec, load_device

REMOTE = "/data/local/tmp"
_NUM = r"([0-9.]+(?:e[+-]?\d+)?)"
TIMINGS = re.compile(
    rf"Inference timings in us: Init: (\d+), First inference: (\d+), Warmup \(avg\): {_NUM}, Inference \(avg\): {_NUM}"
)
STAT = re.compile(rf"count=(\d+) first=(\d+) curr=(\d+) min=(\d+) max=(\d+) avg={_NUM} std=(\d+)")


@pytest.fixture(scope="module")
def small_bundle(bundle_factory) -> Path:  # type: ignore[no-untyped-def]
    return bundle_factory("small_cnn", "int8")


@pytest.fixture(scope="module")
def remote_whole(small_bundle: Path, adb_device: adbutils.AdbDevice) -> str:
    remote = f"{REMOTE}/small_cnn_whole.tflite"
    adb_device.sync.push(small_bundle / "whole.tflite", remote)
    return remote


def test_benchmark_model_prints_the_real_format(adb_device: adbutils.AdbDevice, remote_whole: str) -> None:
    command = (
        f"{REMOTE}/benchmark_model --graph={remote_whole} --num_threads=1 --num_runs=20 "
        "--warmup_runs=3 --min_secs=0 --warmup_min_secs=0 --use_xnnpack=true --enable_op_profiling=true"
    )
    result = adb_device.shell2(command, v2=True)
    assert result.returncode == 0, result.stderr
    log = result.stderr  # the real tool logs on stderr
    assert log.startswith("INFO: STARTING!\n")
    assert f"INFO: Graph: [{remote_whole}]" in log
    assert (
        "INFO: Running benchmark for at least 20 iterations and at least 0 seconds but terminate if exceeding 150 seconds."
        in log
    )
    warmup, inference = STAT.findall(log)
    assert int(warmup[0]) >= 3 and int(inference[0]) == 20
    timings = TIMINGS.search(log)
    assert timings is not None
    _init_us, first_us, warmup_avg, inference_avg = timings.groups()
    assert int(first_us) == int(warmup[1])  # first warm-up run
    assert float(inference_avg) == pytest.approx(float(inference[5]), rel=1e-5)
    assert float(warmup_avg) == pytest.approx(float(warmup[5]), rel=1e-5)
    assert int(inference[3]) <= float(inference_avg) <= int(inference[4])  # min <= avg <= max


def test_battery_current_rises_while_benchmark_runs(
    adb_device: adbutils.AdbDevice, emulated_device: EmulatedDevice, remote_whole: str
) -> None:
    """Sample current_now/voltage_now through other adb streams while benchmark_model runs."""
    sysfs = "/sys/class/power_supply/battery"
    adb_device.shell("dumpsys battery unplug")
    try:
        idle_ua = int(adb_device.shell(f"cat {sysfs}/current_now"))
        samples: list[tuple[float, int, int]] = []  # (host time s, current µA, voltage µV)
        stop = threading.Event()

        def sample() -> None:  # one `cat` per reading, over its own adb stream (as AdbDevice does)
            while not stop.is_set():
                current, voltage = adb_device.shell(f"cat {sysfs}/current_now {sysfs}/voltage_now").split()
                samples.append((time.monotonic(), int(current), int(voltage)))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        time.sleep(0.3)
        energy_before = emulated_device.battery.energy_mj(above_idle=True)
        t_start = time.monotonic()
        result = adb_device.shell2(
            f"{REMOTE}/benchmark_model --graph={remote_whole} --num_threads=2 --num_runs=1 --warmup_runs=1 "
            "--min_secs=1.5 --warmup_min_secs=0",
            v2=True,
        )
        t_end = time.monotonic()
        energy_after = emulated_device.battery.energy_mj(above_idle=True)
        time.sleep(0.3)
        stop.set()
        thread.join(timeout=5)
    finally:
        adb_device.shell("dumpsys battery reset")
    assert result.returncode == 0, result.stderr
    assert idle_ua < 0  # discharging: negative, as documented
    busy = [c for t, c, _ in samples if t_start + 0.2 < t < t_end - 0.2]
    quiet = [c for t, c, _ in samples if t < t_start - 0.05]
    assert busy and quiet
    assert min(abs(c) for c in busy) > max(abs(c) for c in quiet)  # the current rises while it runs

    # Energy above idle integrated from the sysfs samples matches the power model's energy for the run.
    profile = emulated_device.spec
    idle_mw = profile.idle_mw
    measured_mj = 0.0
    for (t0, c0, v0), (t1, _, _) in itertools.pairwise(samples):
        power_mw = -c0 * v0 / 1e9  # µA * µV = pW; / 1e9 -> mW (discharging current is negative)
        measured_mj += (power_mw - idle_mw) * (t1 - t0)
    stats = STAT.findall(result.stderr)
    busy_s = sum(int(count) * float(avg) for count, *_, avg, _std in stats) / 1e6
    model_mj = profile.compute_power_mw(2) * busy_s
    assert energy_after - energy_before == pytest.approx(model_mj, rel=0.05)
    assert measured_mj == pytest.approx(model_mj, rel=0.10)


def test_chain_runner_matches_segment_chain(
    small_bundle: Path, adb_device: adbutils.AdbDevice, tmp_path: Path
) -> None:
    from models.bundle import read_manifest
    from models.runtime import SegmentChain

    manifest = read_manifest(small_bundle)
    chain = SegmentChain(small_bundle)
    rng = np.random.default_rng(0)
    x = chain.prepare_input(rng.standard_normal(manifest.input.shape).astype(np.float32))
    start, stop = 1, manifest.num_segments
    partial = chain.run(x, 0, start).output  # the device runs segments start..stop-1 on this tensor
    expected = chain.run(partial, start, stop).output
    graphs = []
    for segment in manifest.segments[start:stop]:
        remote = f"{REMOTE}/chain/{segment.file}"
        adb_device.sync.push(small_bundle / segment.file, remote)
        graphs.append(remote)
    buffer = io.BytesIO()
    np.save(buffer, partial)
    adb_device.sync.push(buffer.getvalue(), f"{REMOTE}/chain/in.npy")
    result = adb_device.shell2(
        f"{REMOTE}/jointdnn_chain_runner --graphs={','.join(graphs)} --input={REMOTE}/chain/in.npy "
        f"--output={REMOTE}/chain/out.npy --num_threads=1",
        v2=True,
    )
    assert result.returncode == 0, result.stderr
    segment_line, total_line = result.stdout.strip().splitlines()
    segment_ms = [float(v) for v in segment_line.removeprefix("segment_ms: ").split(",")]
    assert len(segment_ms) == stop - start
    assert float(total_line.removeprefix("total_ms: ")) == pytest.approx(sum(segment_ms), abs=0.01)
    output = np.load(io.BytesIO(adb_device.sync.read_bytes(f"{REMOTE}/chain/out.npy")))
    assert output.dtype == expected.dtype and np.array_equal(output, expected)
    missing = adb_device.shell2(
        f"{REMOTE}/jointdnn_chain_runner --graphs={REMOTE}/chain/nope.tflite --input={REMOTE}/chain/in.npy "
        f"--output={REMOTE}/chain/o.npy",
        v2=True,
    )
    assert missing.returncode == 1 and "nope.tflite" in missing.stderr
    adb_device.shell(f"rm -r {REMOTE}/chain")


def test_killing_the_adb_client_stops_the_runner(emulated_device: EmulatedDevice, remote_whole: str) -> None:
    """Ctrl-C on `adb shell` closes the stream: benchmark_model stops and the compute power goes away."""
    import subprocess

    from harness.emulator import adb_binary

    battery = emulated_device.battery
    idle_mw = emulated_device.spec.idle_mw
    command = f"{REMOTE}/benchmark_model --graph={remote_whole} --min_secs=60 --warmup_min_secs=0"
    process = subprocess.Popen(
        [adb_binary(), "-s", emulated_device.serial, "shell", command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while battery.power_mw() == idle_mw and time.monotonic() < deadline:
            time.sleep(0.05)
        assert battery.power_mw() > idle_mw  # it is computing
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while battery.power_mw() != idle_mw and time.monotonic() < deadline:
        time.sleep(0.05)
    assert battery.power_mw() == idle_mw


def _direct_system(profile: DeviceSpec, root: Path) -> AndroidSystem:
    """The emulated device's image and programs without the adb transport (cheap, one per profile)."""
    system = AndroidSystem(profile, root, serial=f"emulated-{profile.name}", programs={})
    system.builtin_files.update(BUILTIN_PROGRAMS)
    return system


def _run(system: AndroidSystem, line: str) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    status = Shell(system, cwd=REMOTE).run(line, io.BytesIO(), out, err)
    return status, out.getvalue().decode(), err.getvalue().decode()


def test_compute_slowdown_stretches_benchmark_times_and_energy(
    bundle_factory: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """compute_slowdown=3 reports ~3x the times of slowdown 1 (same model, same test: a ratio) and the
    battery's compute energy follows the padded times; the chain runner pads and warms up too."""
    bundle = bundle_factory("small_cnn", "fp32")  # fp32: the larger invoke of the two
    base = load_device("generic-phone")
    avg_us: dict[float, float] = {}
    for slowdown in (1.0, 3.0):
        profile = base.model_copy(update={"name": f"slow{slowdown:g}", "compute_slowdown": slowdown})
        system = _direct_system(profile, tmp_path / f"root{slowdown:g}")
        system.fs.write_bytes(f"{REMOTE}/m.tflite", (bundle / "whole.tflite").read_bytes())
        before = system.battery.energy_mj(above_idle=True)
        status, _, log = _run(
            system,
            "./benchmark_model --graph=m.tflite --num_threads=1 --num_runs=40 --warmup_runs=2 "
            "--min_secs=0.5 --warmup_min_secs=0",
        )
        energy_mj = system.battery.energy_mj(above_idle=True) - before
        assert status == 0, log
        stats = STAT.findall(log)
        busy_s = sum(int(count) * float(avg) for count, *_, avg, _std in stats) / 1e6
        assert energy_mj == pytest.approx(profile.compute_power_mw(1) * busy_s, rel=0.10)
        avg_us[slowdown] = float(stats[1][5])  # the measured phase's avg (µs)

        graphs = _write_chain_inputs(system, bundle, segments=2)
        status, out, err = _run(
            system,
            f"./jointdnn_chain_runner --graphs={graphs} --input=in.npy --output=out.npy --warmup_runs=1",
        )
        assert status == 0, err
        assert out.startswith("segment_ms: ") and len(out.splitlines()[0].split(",")) == 2
    assert 2.0 < avg_us[3.0] / avg_us[1.0] < 4.5


def _write_chain_inputs(system: AndroidSystem, bundle: Path, *, segments: int) -> str:
    """Copy the first ``segments`` segment graphs and a zero input into the image; return --graphs."""
    from models.bundle import read_manifest

    manifest = read_manifest(bundle)
    spec = manifest.segments[0].input
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(spec.shape, dtype=np.dtype(spec.dtype)))
    system.fs.write_bytes(f"{REMOTE}/in.npy", buffer.getvalue())
    names = [segment.file for segment in manifest.segments[:segments]]
    for name in names:
        system.fs.write_bytes(f"{REMOTE}/{name}", (bundle / name).read_bytes())
    return ",".join(names)
