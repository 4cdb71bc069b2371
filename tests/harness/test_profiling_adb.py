"""The profiling job through the real adb server on the emulated device: full job, resume, device loss, CLI."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli import main
from harness.devices.adb import AdbDevice, RetryPolicy
from harness.emulator import EmulatedDevice
from harness.profiling import JobListener, JobResult, ProfileSettings, profile_device, profile_devices
from models.bundle import read_manifest
from models.errors import DeviceDisconnectedError
from models.profile_rows import ProfileRow, read_profile, segment_rows, whole_model_row

# short runs: the suite's budget, not the defaults a user gets
QUICK = ProfileSettings(runs=10, warmup_min_secs=0.02, backward=False)  # backward: test_training_adb.py


def _device(serial: str, **kwargs: object) -> AdbDevice:
    return AdbDevice(serial, energy_window_s=0.25, **kwargs)  # type: ignore[arg-type]


def _usb_powered(device: AdbDevice) -> bool:
    return "USB powered: true" in device.dumpsys_battery([]).stdout


class StopAfter(JobListener):
    """Raises (Ctrl-C) or runs an action once ``n`` units have been measured."""

    def __init__(self, n: int, action: Callable[[], None] | None = None):
        self.n, self.action, self.seen = n, action, 0

    def unit_done(self, device: str, row: ProfileRow, measured: bool) -> None:
        self.seen += 1
        if self.seen == self.n:
            if self.action is None:
                raise KeyboardInterrupt
            self.action()


def test_full_job_rows_match_the_segment_list(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    manifest = read_manifest(bundle)
    device = _device(emulated_device.serial)
    result = profile_device(device, bundle, QUICK, out_root=tmp_path)
    assert result.csv_path == tmp_path / device.name / "small_cnn-int8.csv"
    frame = read_profile(result.csv_path)
    segments = segment_rows(frame)
    assert list(segments["segment"]) == [s.index for s in manifest.segments]
    assert list(segments["last_layer"]) == [s.last_layer for s in manifest.segments]
    assert list(segments["out_bytes"]) == [s.out_bytes for s in manifest.segments]
    assert list(segments["artifact_sha256"]) == [s.sha256 for s in manifest.segments]
    whole = whole_model_row(frame)
    assert whole is not None and whole["artifact_sha256"] == manifest.whole_sha256
    assert (frame["runtime"] == "benchmark_model").all() and (frame["runs"] >= 10).all()
    assert (frame["energy_mj"] > 0).all() and result.energy_source == "battery"
    assert _usb_powered(device)  # battery reset after the job
    assert result.runner_s > 0 and result.wall_s > result.runner_s


def test_interrupted_job_resumes_without_remeasuring(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    total = read_manifest(bundle).num_segments + 1
    device = _device(emulated_device.serial)
    with pytest.raises(KeyboardInterrupt):
        profile_device(device, bundle, QUICK, out_root=tmp_path, listener=StopAfter(3))
    assert _usb_powered(device)  # `dumpsys battery reset` ran despite Ctrl-C
    resumed = profile_device(device, bundle, QUICK, out_root=tmp_path)
    assert resumed.skipped == [0, 1, 2]
    assert len(resumed.measured) == total - 3  # what was re-run: only the missing units
    assert len(read_profile(resumed.csv_path)) == total


def test_device_killed_mid_job_leaves_a_resumable_csv(
    bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    total = read_manifest(bundle).num_segments + 1
    quick_retry = RetryPolicy(attempts=2, backoff_s=0.05, command_timeout_s=20.0)
    victim = EmulatedDevice("generic-phone").start()
    try:
        device = _device(victim.serial, retry=quick_retry)
        with pytest.raises(DeviceDisconnectedError, match="to resume") as caught:
            profile_device(device, bundle, QUICK, out_root=tmp_path, listener=StopAfter(2, victim.stop))
        assert f"--device {victim.serial}" in str(caught.value)
    finally:
        victim.stop()
    csv_path = tmp_path / device.name / "small_cnn-fp32.csv"
    assert list(read_profile(csv_path)["segment"]) == [0, 1]
    with EmulatedDevice("generic-phone") as again:  # same phone back on another port
        resumed = profile_device(_device(again.serial), bundle, QUICK, out_root=tmp_path)
    assert resumed.skipped == [0, 1] and len(resumed.measured) == total - 2


def test_several_devices_are_profiled_in_parallel_into_their_own_folders(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    with EmulatedDevice("low-end-phone") as low_end:
        devices = [_device(emulated_device.serial), _device(low_end.serial), _device(low_end.serial)]
        results = profile_devices(
            devices,
            bundle,
            ProfileSettings(runs=5, warmup_min_secs=0.0, measure_energy=False, backward=False),
            out_root=tmp_path,
        )
    assert len(results) == 2  # the same phone listed twice is profiled once
    assert all(isinstance(r, JobResult) for r in results)
    folders = sorted(p.parent.name for p in tmp_path.glob("*/small_cnn-int8.csv"))
    assert folders == sorted({d.name for d in devices}) and len(folders) == 2
    for folder in folders:
        assert (
            len(read_profile(tmp_path / folder / "small_cnn-int8.csv"))
            == read_manifest(bundle).num_segments + 1
        )


def test_cli_profile_and_devices(
    emulated_device: EmulatedDevice,
    bundle_factory: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle_factory("small_cnn", "int8")  # warms the session's artifact cache for the CLI's export
    args = ["profile", "small_cnn", "--device", emulated_device.serial, "--quant", "int8", "--runs", "5"]
    args += [
        "--energy-window",
        "0.2",
        "--bundle-dir",
        str(tmp_path / "bundles"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    assert "measured" in capsys.readouterr().out
    assert main([*args, "--no-energy"]) == 0
    assert "0 measured" in capsys.readouterr().out  # resumed: nothing left to do
    assert main(["devices"]) == 0
    assert emulated_device.serial in capsys.readouterr().out
    assert main(["profile", "small_cnn", "--device", "127.0.0.1:1"]) == 1
    assert "no device with serial" in capsys.readouterr().err
    frame = read_profile(next((tmp_path / "out").glob("*/small_cnn-int8.csv")))
    assert not math.isnan(frame["energy_mj"].iloc[0])
