"""Device state with every profile row: parsing, the emulated thermal model, throttling, cooldown, charging."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli import main
from harness.devices.adb import AdbDevice
from harness.devices.telemetry import DeviceState, cool_down, parse_state, state_changes
from harness.emulator import EmulatedDevice
from harness.emulator.thermal import ThermalModel
from harness.profiling import ProfileSettings, profile_device
from harness.specs import load_device
from models.profile_rows import read_profile

QUICK = ProfileSettings(
    runs=5, warmup_min_secs=0.02, backward=False
)  # forward only: telemetry is the subject

# What `grep '' ...` prints on a phone with three clusters (captured layout; values made up):
# millidegree zones, a zone in whole degrees, a zone that refused the read (absent), usb online.
PHONE_OUTPUT = """\
/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor:schedutil
/sys/devices/system/cpu/cpu4/cpufreq/scaling_governor:schedutil
/sys/devices/system/cpu/cpu7/cpufreq/scaling_governor:performance
/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq:300000
/sys/devices/system/cpu/cpu4/cpufreq/scaling_cur_freq:1200000
/sys/devices/system/cpu/cpu7/cpufreq/scaling_cur_freq:2016000
/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq:300000
/sys/devices/system/cpu/cpu4/cpufreq/scaling_min_freq:710400
/sys/devices/system/cpu/cpu7/cpufreq/scaling_min_freq:844800
/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq:1804800
/sys/devices/system/cpu/cpu4/cpufreq/scaling_max_freq:2419200
/sys/devices/system/cpu/cpu7/cpufreq/scaling_max_freq:2016000
/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq:1804800
/sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq:2419200
/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq:2841600
/sys/devices/system/cpu/cpu0/cpufreq/related_cpus:0 1 2 3
/sys/devices/system/cpu/cpu4/cpufreq/related_cpus:4 5 6
/sys/devices/system/cpu/cpu7/cpufreq/related_cpus:7
/sys/class/thermal/thermal_zone0/type:cpu-1-0-usr
/sys/class/thermal/thermal_zone1/type:battery
/sys/class/thermal/thermal_zone2/type:pm8150b-ibat-lvl0
/sys/class/thermal/thermal_zone3/type:xo-therm
/sys/class/thermal/thermal_zone0/temp:48900
/sys/class/thermal/thermal_zone1/temp:31
/sys/class/thermal/thermal_zone3/temp:36500
/sys/class/power_supply/battery/status:Discharging
/sys/class/power_supply/usb/online:1
/sys/class/power_supply/wireless/online:0
"""


def test_parse_state_groups_clusters_and_normalises_temperatures() -> None:
    state = parse_state(PHONE_OUTPUT, 1.0)
    assert [c.cpus for c in state.clusters] == [(0,), (4,), (7,)]  # cpu1-3 etc. print nothing here
    big = state.big
    assert big is not None and big.cpus == (7,) and big.hw_max_khz == 2841600
    assert big.capped and big.max_khz == 2016000  # cap below the hardware maximum: throttled
    assert state.governor_text() == "0:schedutil;4:schedutil;7:performance"
    assert state.freq_text().startswith("0:300000/300000/1804800;4:710400/1200000/2419200")
    assert state.zones == (("cpu-1-0-usr", 48.9), ("battery", 31.0), ("xo-therm", 36.5))
    assert state.hottest_c == 48.9
    assert state.battery_status == "Discharging" and state.chargers_online == ("usb",)
    assert state.charging  # the framework may say discharging; the usb supply is online


def test_clusters_fall_back_to_equal_max_frequency() -> None:
    lines = [
        f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq:{1800000 if cpu < 2 else 2400000}"
        for cpu in range(4)
    ]
    state = parse_state("\n".join(lines))
    assert [c.cpus for c in state.clusters] == [(0, 1), (2, 3)]
    assert state.clusters[1].label == "2-3" and not state.charging and math.isnan(state.hottest_c)


def test_state_changes_reports_a_lowered_cap_and_heating() -> None:
    cool = parse_state(PHONE_OUTPUT.replace("scaling_max_freq:2016000", "scaling_max_freq:2841600"))
    assert state_changes(cool, cool) == (False, [])
    hot = parse_state(
        PHONE_OUTPUT.replace("scaling_max_freq:2016000", "scaling_max_freq:1497600").replace(
            "temp:48900", "temp:71200"
        )
    )
    throttled, notes = state_changes(cool, hot)
    assert throttled
    assert notes == ["cpu7 max 2841600->1497600 kHz", "temperature 48.9->71.2 C"]
    assert state_changes(hot, hot) == (True, ["cpu7 capped at 1497600 of 2841600 kHz"])


def test_thermal_model_heats_under_load_trips_and_recovers() -> None:
    spec = load_device("generic-phone").model_copy(
        update={"thermal_resistance_c_per_w": 40.0, "thermal_capacitance_j_per_c": 0.05, "trip_c": 55.0}
    )
    model = ThermalModel(spec)
    idle_c = model.temp_c
    assert idle_c == pytest.approx(25.0 + 0.45 * 40.0)  # starts in the idle steady state
    model.advance(0.5, 2000.0, busy=True)  # tau = 2 s: 0.5 s at 2 W
    expected = 105.0 + (idle_c - 105.0) * math.exp(-0.25)
    assert model.temp_c == pytest.approx(expected) and model.throttled and model.trips == 1
    clocks = model.clocks()
    assert [c.cap_khz for c in clocks] == [900000, 1200000]  # half of 1.8 / 2.4 GHz
    assert [c.cur_khz for c in clocks] == [900000, 1200000]  # busy: at the cap
    model.advance(1.0, 450.0, busy=False)
    assert model.throttled  # hysteresis: 5 °C below the trip before the cap lifts
    model.advance(30.0, 450.0, busy=False)
    assert model.temp_c == pytest.approx(idle_c, abs=0.01) and not model.throttled
    assert [c.cur_khz for c in model.clocks()] == [300000, 500000]  # idle: cluster minimum


def test_cooldown_gate_waits_until_cool_and_gives_up_after_the_limit() -> None:
    now = [0.0]
    temps = iter([70.0, 60.0, 50.0, 44.0])

    def read() -> DeviceState:
        return DeviceState(now[0], zones=(("cpu", next(temps)),))

    def sleep(seconds: float) -> None:
        now[0] += seconds

    done = cool_down(read, max_temp_c=45.0, wait_s=None, poll_s=1.0, sleep=sleep, clock=lambda: now[0])
    assert done.reached and done.waited_s == 3.0 and done.temp_c == 44.0
    stuck = cool_down(
        lambda: DeviceState(now[0], zones=(("cpu", 90.0),)),
        max_temp_c=45.0,
        wait_s=2.5,
        poll_s=1.0,
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert not stuck.reached and stuck.waited_s == pytest.approx(2.5)


def test_emulated_device_state_in_one_shell_command(emulated_device: EmulatedDevice) -> None:
    device = AdbDevice(emulated_device.serial)
    state = device.device_state()
    assert state.governor_text() == "schedutil"
    assert state.freq_text() == "0-3:300000/300000/1800000;4-7:500000/500000/2400000"  # idle: minimum
    assert [kind for kind, _ in state.zones] == ["cpu-thermal", "battery"]
    assert 25.0 < state.hottest_c < 85.0
    assert state.battery_status == "Charging" and state.charging  # on its emulated USB cable


def test_profile_rows_carry_plausible_device_state(
    emulated_device: EmulatedDevice, bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    device = AdbDevice(emulated_device.serial, energy_window_s=0.25)
    settings = ProfileSettings(runs=5, warmup_min_secs=0.02, taskset_mask="f0", backward=False)
    result = profile_device(device, bundle, settings, out_root=tmp_path)
    frame = read_profile(result.csv_path)
    assert (frame["energy_source"] == "battery").all() and (frame["energy_mj"] > 0).all()
    assert (frame["cpu_governor"] == "schedutil").all()
    assert (frame["big_cpu_hw_max_khz"] == 2400000).all() and (frame["big_cpu_max_khz_end"] == 2400000).all()
    for text in frame["cpu_freq_khz"]:
        clusters = [part.split(":") for part in text.split(";")]
        assert [cpus for cpus, _ in clusters] == ["0-3", "4-7"]
        for _, values in clusters:
            low, cur, high = map(int, values.split("/"))
            assert 0 < low <= cur <= high
    assert ((frame["temp_c_start"] > 25) & (frame["temp_c_end"] < 85)).all()
    assert frame["thermal_zones_c"].str.match(r"^cpu-thermal:\d+\.\d;battery:\d+\.\d$").all()
    assert (frame["battery_status"] == "Discharging").all() and not frame["charging"].any()
    assert not frame["throttled"].any() and (frame["state_notes"] == "").all()
    assert (frame["taskset_mask"] == "f0").all()
    assert frame["runner_binary"].str.match(r"^sha256:[0-9a-f]{16}$").all()
    assert frame["runner_command"].str.startswith("taskset f0 /data/local/tmp/benchmark_model --graph=").all()
    assert result.warnings == []


def test_charger_plugged_in_makes_energy_nan_with_a_warning(
    emulated_device: EmulatedDevice,
    bundle_factory: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    device = AdbDevice(emulated_device.serial, energy_window_s=0.25, power_spec=emulated_device.spec)
    emulated_device.battery.attach_charger()  # a USB cable: `dumpsys battery unplug` cannot cut it
    try:
        with caplog.at_level(logging.WARNING, logger="harness.profiling.job"):
            result = profile_device(device, bundle, QUICK, out_root=tmp_path)
    finally:
        emulated_device.battery.attach_charger(False)
    frame = read_profile(result.csv_path)
    assert frame["energy_mj"].isna().all() and frame["power_mw"].isna().all()
    assert frame["charging"].all() and (frame["battery_status"] == "Charging").all()
    assert (frame["energy_source"] == "").all()  # no valid source
    assert frame["latency_ms_median"].notna().all()  # timings are still recorded
    assert len(result.warnings) == len(frame)
    assert all("energy recorded as NaN" in warning for warning in result.warnings)
    assert any("charging (Charging)" in record.getMessage() for record in caplog.records)


@pytest.fixture
def hot_phone() -> EmulatedDevice:
    """A phone with a tiny heat capacity and a low trip point: it throttles within ~0.1 s of compute.

    Cooling back to the release point (45 °C) takes ~2 s, so the snapshot after a unit sees the cap
    even on a loaded machine (up to ~0.8 s late seen here).
    """
    spec = load_device("generic-phone").model_copy(
        update={
            "name": "hot-phone",
            "compute_slowdown": 1.0,
            "thermal_resistance_c_per_w": 40.0,  # idle 43 °C, computing (1.95 W) towards 103 °C
            "thermal_capacitance_j_per_c": 0.025,  # tau = 1 s: trips in ~0.1 s, holds the cap ~1 s after
            "trip_c": 50.0,
            "trip_hysteresis_c": 5.0,  # the cap lifts at 45 °C: the cooldown gate's target below
        }
    )
    with EmulatedDevice(spec) as device:
        yield device  # type: ignore[misc]


def test_hot_phone_throttles_is_reported_and_the_cooldown_gate_waits(
    hot_phone: EmulatedDevice,
    bundle_factory: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    device = AdbDevice(hot_phone.serial, energy_window_s=0.25)
    settings = ProfileSettings(
        backward=False, runs=5, warmup_min_secs=0.02, min_secs=0.3, whole_model=False, measure_energy=False
    )
    with caplog.at_level(logging.WARNING, logger="harness.profiling.job"):
        hot = profile_device(device, bundle, settings, out_root=tmp_path)
    assert hot_phone.battery.thermal.trips >= 1
    frame = read_profile(hot.csv_path)
    assert frame["throttled"].all()  # every unit ran under (or into) the thermal cap
    assert (frame["big_cpu_max_khz_end"] == 1200000).all()
    assert (frame["temp_c_end"] > 44).all()  # capped: above the 45 °C release point when the cap was read
    assert frame["state_notes"].str.contains("cpu4-7 ").all()
    assert len(hot.warnings) == len(frame) and any("kHz" in r.getMessage() for r in caplog.records)

    gated = ProfileSettings(
        backward=False,
        runs=5,
        warmup_min_secs=0.02,
        min_secs=0.3,
        whole_model=False,
        measure_energy=False,
        force=True,
        cooldown_temp_c=45.0,
        cooldown_s=30.0,
    )
    cooled = profile_device(device, bundle, gated, out_root=tmp_path / "gated")
    rows = read_profile(cooled.csv_path)
    assert (rows["cooldown_s"] > 0).all()  # each unit heated the phone, so each gate waited
    assert (rows["temp_c_start"] <= 45.0).all() and (rows["big_cpu_max_khz_start"] == 2400000).all()
    assert (rows["big_cpu_max_khz_end"] == 1200000).all()  # the unit itself then tripped it: reported
    assert rows["state_notes"].str.contains("max 2400000->1200000 kHz").all()


def test_cli_cooldown_and_perfetto_flags(
    emulated_device: EmulatedDevice,
    bundle_factory: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle_factory("small_cnn", "fp32")  # warms the session's artifact cache for the CLI's export
    args = [
        "profile",
        "small_cnn",
        "--device",
        emulated_device.serial,
        "--runs",
        "3",
        "--energy-window",
        "0.2",
    ]
    args += ["--bundle-dir", str(tmp_path / "bundles"), "--out", str(tmp_path / "out")]
    assert main([*args, "--cooldown-temp", "99", "--cooldown-s", "5", "--perfetto"]) == 0
    assert "measured" in capsys.readouterr().out
    frame = read_profile(next((tmp_path / "out").glob("*/small_cnn-fp32.csv")))
    assert (frame["cooldown_s"] >= 0).all() and (frame["temp_c_start"] <= 99).all()
    assert (frame["energy_source"] == "perfetto-rails").all()
