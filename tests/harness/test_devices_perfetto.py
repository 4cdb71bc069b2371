"""Energy units and sign, Perfetto traces written by the ``perfetto`` package, and the fallback to sysfs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from perfetto.trace_builder.proto_builder import TraceProtoBuilder

from harness.devices.adb import AdbDevice
from harness.devices.battery import PowerSample, discharge_factor, power_mw
from harness.devices.perfetto import parse_power_trace, window_excess_mw
from harness.emulator import EmulatedDevice
from models.benchmark import BenchmarkSettings
from models.bundle import read_manifest

S = 1_000_000_000  # ns per second
VOLTAGE_UV = 3_850_000
IDLE_MW, RUN_MW = 450.0, 1950.0  # whole phone; rails below see part of it

# The same discharge currents as four gauges report them: (unit, sign convention) -> raw value of 1 µA.
GAUGES = {
    ("ua", "negative-discharge"): -1.0,  # Android's documented convention (Pixel, most Qualcomm)
    ("ua", "positive-discharge"): 1.0,  # several vendors
    ("ma", "negative-discharge"): -1e-3,  # mA gauges (some Samsung / MediaTek kernels)
    ("ma", "positive-discharge"): 1e-3,
}


def _discharge_ua(power: float) -> float:
    return power / (VOLTAGE_UV / 1e6) * 1e3  # mW / V = mA; * 1e3 = µA


@pytest.mark.parametrize(("unit", "convention"), list(GAUGES))
def test_discharge_factor_normalises_unit_and_sign(unit: str, convention: str) -> None:
    raw_per_ua = GAUGES[(unit, convention)]
    idle = [raw_per_ua * _discharge_ua(IDLE_MW) * (1 + 0.01 * k) for k in range(-3, 4)]
    factor = discharge_factor(idle)
    assert factor * raw_per_ua == pytest.approx(1.0)  # raw -> discharge µA, positive
    assert discharge_factor(idle, unit=unit, convention=convention) == factor  # agrees with the stated one
    samples = [PowerSample(0.0, current, VOLTAGE_UV) for current in idle]
    assert float(np.median(power_mw(samples, factor))) == pytest.approx(IDLE_MW)


def test_explicit_convention_and_unit_override_the_inference() -> None:
    charging_ua = [120_000.0, 118_000.0]  # positive while charging on an Android-convention gauge
    assert discharge_factor(charging_ua, convention="negative-discharge") == -1.0
    assert discharge_factor([900.0, 950.0], unit="ua") == 1.0  # tiny µA values stay µA when told
    assert discharge_factor([900.0, 950.0]) == 1000.0  # inferred: mA
    assert discharge_factor([]) == 1.0  # no reference: µA, positive


def _rails_trace() -> bytes:
    """A trace as the android.power data source writes it: two rails, cumulative µWs every 100 ms."""
    builder = TraceProtoBuilder()
    packet = builder.add_packet()
    packet.timestamp = 1 * S
    for index, name in enumerate(["S4M_VDD_CPUCL2", "S2S_VDD_G3D"]):
        rail = packet.power_rails.rail_descriptor.add()
        rail.index, rail.rail_name, rail.subsys_name, rail.sampling_rate = index, name, "cpu", 1000
    energy = [0.0, 0.0]  # µWs
    for step in range(41):  # 0..4 s; idle first 2 s (100 + 50 mW), then running (1300 + 50 mW)
        t_ms = 1000 + step * 100
        packet = builder.add_packet()
        packet.timestamp = t_ms * 1_000_000
        for index in range(2):
            sample = packet.power_rails.energy_data.add()
            sample.index, sample.timestamp_ms, sample.energy = index, t_ms, round(energy[index])
        cpu_mw = 100.0 if t_ms < 3000 else 1300.0
        energy[0] += cpu_mw * 1e3 * 0.1  # mW -> µW, times 0.1 s = µWs
        energy[1] += 50.0 * 1e3 * 0.1
    return builder.serialize()


def test_power_rails_from_a_trace_the_perfetto_package_wrote() -> None:
    trace = parse_power_trace(_rails_trace())
    assert sorted(trace.rails) == ["S2S_VDD_G3D", "S4M_VDD_CPUCL2"] and trace.has_rails
    window = window_excess_mw(trace, (1 * S, 3 * S), (3 * S, 5 * S))
    assert window is not None and window.source == "perfetto-rails"
    assert window.idle_mw == pytest.approx(150.0, rel=1e-3)
    assert window.excess_mw == pytest.approx(1200.0, rel=1e-3)


@pytest.mark.parametrize(("unit", "convention"), list(GAUGES))
def test_battery_counters_in_every_unit_and_sign_give_the_same_power(unit: str, convention: str) -> None:
    raw_per_ua = GAUGES[(unit, convention)]
    builder = TraceProtoBuilder()
    for step in range(40):  # 10 Hz for 4 s: idle for 2 s, then running
        t_ns = S + step * S // 10
        packet = builder.add_packet()
        packet.timestamp = t_ns
        mw = IDLE_MW if t_ns < 3 * S else RUN_MW
        packet.battery.current_ua = round(raw_per_ua * _discharge_ua(mw))  # the field is an int64
        packet.battery.voltage_uv = VOLTAGE_UV
        packet.battery.charge_counter_uah = 3_000_000 - step
    trace = parse_power_trace(builder.serialize())
    assert not trace.has_rails and len(trace.battery) == 40
    window = window_excess_mw(trace, (1 * S, 3 * S - 1), (3 * S, 5 * S))
    assert window is not None and window.source == "perfetto-battery"
    assert window.idle_mw == pytest.approx(IDLE_MW, rel=2e-3)  # mA rounding: 1 mA of ~117 mA
    assert window.excess_mw == pytest.approx(RUN_MW - IDLE_MW, rel=2e-3)


def test_trace_without_power_data_gives_no_energy() -> None:
    builder = TraceProtoBuilder()
    builder.add_packet().timestamp = S
    assert window_excess_mw(parse_power_trace(builder.serialize()), (0, S), (S, 2 * S)) is None


def _first_segment(device: AdbDevice, bundle: Path) -> str:
    return device.push_bundle(bundle).path(read_manifest(bundle).segments[0].file)


ENERGY = BenchmarkSettings(runs=5, warmup_min_secs=0.02, measure_energy=True)


def test_perfetto_rails_on_the_emulated_device_match_its_battery_model(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path]
) -> None:
    """The whole capture path (config on stdin, --background, uptime window, kill, pull, parse)."""
    bundle = bundle_factory("small_cnn", "fp32")
    device = AdbDevice(emulated_device.serial, energy_window_s=1.0, perfetto=True)
    segment = _first_segment(device, bundle)
    battery = emulated_device.battery
    before = battery.energy_mj(above_idle=True)
    stats = device.benchmark(segment, ENERGY)
    spent_mj = battery.energy_mj(above_idle=True) - before  # the model's compute energy of the call
    assert device.perfetto and device.last_energy_source == "perfetto-rails"
    inferences = stats.count + (stats.warmup_count or ENERGY.warmup_runs)
    assert stats.energy_mj * inferences == pytest.approx(spent_mj, rel=0.15)  # 100 ms rail samples
    assert device.shell(["ls", "/data/misc/perfetto-traces/jointdnn-power.pftrace"]).exit_code != 0


def test_device_without_perfetto_falls_back_to_the_fuel_gauge(
    emulated_device: EmulatedDevice,
    bundle_factory: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    device = AdbDevice(emulated_device.serial, energy_window_s=0.25, perfetto=True)
    segment = _first_segment(device, bundle)
    programs = emulated_device._system().programs
    perfetto = programs.pop("perfetto")  # a phone without the perfetto binary
    try:
        with caplog.at_level(logging.WARNING, logger="harness.devices.adb"):
            stats = device.benchmark(segment, ENERGY)
    finally:
        programs["perfetto"] = perfetto
    assert any("no Perfetto power data (perfetto did not start" in r.getMessage() for r in caplog.records)
    assert not device.perfetto and device.last_energy_source == "battery" and stats.energy_mj > 0
