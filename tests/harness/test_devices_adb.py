"""AdbDevice through the real adb server against the emulated Android device."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.devices.adb import AdbDevice
from harness.devices.battery import BatterySampler, calibrate_sign, power_mw
from harness.devices.local import LocalDevice
from harness.emulator import EmulatedDevice
from models.benchmark import BenchmarkSettings
from models.bundle import file_sha256, read_manifest
from models.errors import BundleError, DeviceError, DeviceNotFoundError


@pytest.fixture(scope="module")
def device(emulated_device: EmulatedDevice) -> AdbDevice:
    return AdbDevice(emulated_device.serial, power_spec=emulated_device.spec, energy_window_s=0.6)


def _battery_state(device: AdbDevice) -> dict[str, str]:
    lines = device.dumpsys_battery([]).stdout.splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if v}


def test_facts_from_getprop(device: AdbDevice, emulated_device: EmulatedDevice) -> None:
    facts = device.facts()
    profile = emulated_device.spec
    assert facts.serial == emulated_device.serial
    assert (facts.model, facts.abi, facts.sdk, facts.cpu_count) == (
        profile.model,
        profile.abi,
        profile.sdk,
        profile.cpu_count,
    )
    assert facts.boot_completed
    assert facts.kind == "adb"
    assert facts.hardware_serial  # ro.serialno: the folder name survives a port change
    assert device.name == facts.device_id and emulated_device.serial not in device.name


def test_android_serial_is_respected_and_unknown_serials_are_named(
    emulated_device: EmulatedDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANDROID_SERIAL", emulated_device.serial)
    assert AdbDevice().serial == emulated_device.serial
    with pytest.raises(DeviceNotFoundError, match=r"no device with serial '127\.0\.0\.1:1'"):
        AdbDevice("127.0.0.1:1")


def test_shell_exit_codes_and_argument_quoting(device: AdbDevice) -> None:
    assert device.shell(["true"]).exit_code == 0
    assert device.shell(["false"]).exit_code == 1
    assert device.shell(["sh", "-c", "exit 7"]).exit_code == 7
    # an argument with shell metacharacters arrives as one literal argument
    assert device.shell(["echo", "a; exit 3 && b"]).stdout.strip() == "a; exit 3 && b"
    with pytest.raises(DeviceError, match="exit code 1"):
        device.shell(["ls", "/no/such/dir"], check=True)


def test_dumpsys_unplug_reset_round_trip_even_on_ctrl_c(device: AdbDevice) -> None:
    assert _battery_state(device)["USB powered"] == "true"
    with pytest.raises(KeyboardInterrupt), device.energy_session():
        state = _battery_state(device)
        assert state["USB powered"] == "false"
        current_ua, _ = device.read_battery()
        assert current_ua < 0  # discharging on this device's sign convention
        raise KeyboardInterrupt
    assert _battery_state(device)["USB powered"] == "true"


def test_battery_current_rises_while_the_runner_works(
    device: AdbDevice, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    push = device.push_bundle(bundle)
    args = [device.ensure_benchmark_model(), f"--graph={push.path('whole.tflite')}", "--min_secs=0.6"]
    with device.energy_session():
        sampler = BatterySampler(device.read_battery, period_s=0.02)
        idle = sampler.collect(0.3)
        with sampler:
            assert device.shell(args).exit_code == 0
    sign = calibrate_sign(idle)
    assert float(np.max(power_mw(sampler.samples, sign))) > float(np.mean(power_mw(idle, sign))) + 500


def test_push_skips_unchanged_files_and_resends_changed_ones(
    device: AdbDevice, emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = shutil.copytree(bundle_factory("small_cnn", "int8"), tmp_path / "push-test")
    manifest = read_manifest(bundle)
    total = manifest.num_segments + 2  # segments + whole + manifest
    first = AdbDevice(emulated_device.serial).push_bundle(bundle)
    assert len(first.pushed) == total and first.skipped == []
    again = AdbDevice(emulated_device.serial).push_bundle(bundle)
    assert again.pushed == [] and len(again.skipped) == total and again.bytes_pushed == 0
    # same size, other bytes on the device: the hash catches it
    remote = first.path("segment_001.tflite")
    size = (bundle / "segment_001.tflite").stat().st_size
    device.shell(["sh", "-c", f"head -c {size} /dev/zero > {remote}"])
    third = AdbDevice(emulated_device.serial).push_bundle(bundle)
    assert third.pushed == ["segment_001.tflite"]
    assert device.remote_sha256([remote])[remote] == manifest.segments[1].sha256


def test_benchmark_model_stats_and_energy_match_the_power_model(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    device = AdbDevice(emulated_device.serial, energy_window_s=1.2)  # ~150 fuel-gauge samples per run
    push = device.push_bundle(bundle)
    battery = emulated_device.battery
    with device.energy_session():
        device.benchmark(
            push.path("whole.tflite"), BenchmarkSettings(runs=5, warmup_min_secs=0.0, measure_energy=True)
        )  # baseline
        before = battery.energy_mj(above_idle=True)
        stats = device.benchmark(
            push.path("whole.tflite"), BenchmarkSettings(runs=20, warmup_min_secs=0.1, measure_energy=True)
        )
        model_mj = battery.energy_mj(above_idle=True) - before
    assert device.last_energy_source == "battery"
    assert stats.count >= 20 and stats.warmup_count >= 1
    assert stats.min_us <= stats.median_us <= stats.max_us
    inferences = stats.count + stats.warmup_count
    assert stats.energy_mj == pytest.approx(model_mj / inferences, rel=0.10)
    # power while computing, per timed invocation: the model's active power, give or take the loop around it
    assert 0.5 < stats.power_mw / emulated_device.spec.compute_power_mw(1) < 2.0


def test_run_chain_on_the_device_matches_local(
    device: AdbDevice, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    manifest = read_manifest(bundle)
    local = LocalDevice()
    rng = np.random.default_rng(3)
    x = local._chain(bundle, 1).prepare_input(rng.standard_normal(manifest.input.shape).astype(np.float32))
    out, segment_ms, energy_mj = device.run_chain(bundle, [0, 1, 2], x)
    expected = local.run_chain(bundle, [0, 1, 2], x).output
    np.testing.assert_array_equal(out, expected)
    assert len(segment_ms) == 3 and energy_mj > 0
    with pytest.raises(DeviceError, match="contiguous"):
        device.run_chain(bundle, [0, 2], x)


def test_missing_benchmark_model_says_what_to_supply_and_a_supplied_one_is_pushed(tmp_path: Path) -> None:
    from models.errors import BenchmarkBinaryMissingError

    with EmulatedDevice("low-end-phone") as phone:
        device = AdbDevice(phone.serial)
        assert device.shell(["rm", "/data/local/tmp/benchmark_model"]).exit_code == 0
        with pytest.raises(BenchmarkBinaryMissingError, match=r"--benchmark-binary PATH.*armeabi-v7a"):
            device.benchmark("/data/local/tmp/x.tflite", BenchmarkSettings())
        binary = tmp_path / "android_arm_benchmark_model"
        binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
        supplied = AdbDevice(phone.serial, benchmark_binary=binary)
        remote = supplied.ensure_benchmark_model()
        assert supplied.remote_sha256([remote])[remote] == file_sha256(binary)


def test_a_modified_bundle_is_refused_before_it_is_pushed(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = shutil.copytree(bundle_factory("small_cnn", "int8"), tmp_path / "modified")
    shutil.copyfile(bundle / "segment_000.tflite", bundle / "segment_001.tflite")
    with pytest.raises(BundleError, match=r"segment_001\.tflite is not the file its manifest names"):
        AdbDevice(emulated_device.serial).push_bundle(bundle)
