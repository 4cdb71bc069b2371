"""Training-phase profiles on an ADB device: backward passes timed by ``benchmark_model`` on the emulated
phone (through the real adb server), and a training plan made from them."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.devices.adb import REMOTE_ROOT, AdbDevice
from harness.devices.local import LocalDevice
from harness.emulator import EmulatedDevice
from harness.planner import Objective, build_problem, plan
from harness.profiling.job import ProfileSettings, profile_device

SETTINGS = ProfileSettings(
    runs=3, warmup_runs=1, warmup_min_secs=0.0, min_secs=0.0, backward_runs=3, whole_model=False
)
CUTS = ("block1_pool", "block3_pool")  # 3 segments: 3 backward conversions instead of 9


def test_adb_devices_profile_backward_passes_and_plan_training(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "fp32", CUTS)
    device = AdbDevice(emulated_device.serial, power_spec=emulated_device.spec, energy_window_s=0.2)
    assert device.capabilities.backward
    mobile = profile_device(device, bundle, SETTINGS, out_root=tmp_path)
    rows = [row for row in mobile.rows if row.segment >= 0]
    assert rows and all(row.backward_ms > 0 and math.isfinite(row.backward_energy_mj) for row in rows)
    pushed = device.shell(["ls", f"{REMOTE_ROOT}/backward"]).stdout.split()
    assert len(pushed) >= len(
        rows
    )  # a backward .tflite per segment on the device (other tests may add theirs)
    cloud = profile_device(LocalDevice(), bundle, SETTINGS, out_root=tmp_path)
    problem = build_problem(mobile.csv_path, cloud.csv_path, "wifi", emulated_device.spec, phase="training")
    assert problem.segments.mobile_backward_ms is not None
    assert list(problem.segments.mobile_backward_ms) == pytest.approx([row.backward_ms for row in rows])
    best = plan(problem, Objective("latency"))
    assert len(best.locations) == len(rows)
    assert best.predicted.latency_ms > 0
