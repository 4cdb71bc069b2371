"""Pure battery arithmetic: sign calibration, idle subtraction, time weighting, unplug/reset guarantee."""

from __future__ import annotations

import pytest

from harness.devices.battery import (
    PowerSample,
    battery_unplugged,
    calibrate_sign,
    energy_per_inference_mj,
    excess_power_mw,
    parse_battery_reading,
)

VOLT_UV = 4_000_000.0  # 4 V


def _samples(times: list[float], current_ua: float) -> list[PowerSample]:
    return [PowerSample(t, current_ua, VOLT_UV) for t in times]


@pytest.mark.parametrize("discharge_sign", [1, -1])
def test_sign_is_calibrated_from_idle_for_both_vendor_conventions(discharge_sign: int) -> None:
    idle = _samples([0.0, 0.1, 0.2], discharge_sign * 100_000)  # 100 mA -> 400 mW
    run = _samples([1.0, 1.1, 1.2, 1.3], discharge_sign * 475_000)  # 1900 mW
    sign = calibrate_sign(idle)
    assert sign == discharge_sign
    assert excess_power_mw(idle, run, sign) == pytest.approx(1500.0)


def test_constant_current_means_no_visible_drain() -> None:
    idle = _samples([0.0, 0.1, 0.2], -100_000)
    run = _samples([1.0, 1.1, 1.2], -100_000)  # Android Studio emulator: the gauge never moves
    assert excess_power_mw(idle, run, calibrate_sign(idle)) is None
    assert excess_power_mw(idle, run[:2], 1) is None  # too few samples


def test_busy_periods_are_weighted_by_the_time_they_cover() -> None:
    idle = _samples([0.0, 0.1], 0.0)
    # many quick samples while idle, few slow ones while busy (reads come back late under load)
    run = _samples([0.0, 0.05, 0.10, 0.15, 0.20], 0.0) + _samples([0.6, 1.0], 250_000)  # 1000 mW
    excess = excess_power_mw(idle, run, 1, window=(0.0, 1.0))
    assert excess is not None
    # busy from the midpoint 0.4 s to the end 1.0 s: 60% of the window at 1000 mW
    assert excess == pytest.approx(600.0)
    assert energy_per_inference_mj(excess, 1.0, 100) == pytest.approx(6.0)  # 600 mJ over 100 inferences


def test_readings_in_millivolts_are_scaled() -> None:
    assert parse_battery_reading("-123456\n3850\n") == (-123456.0, 3_850_000.0)
    assert parse_battery_reading("5 4000000") == (5.0, 4_000_000.0)
    with pytest.raises(ValueError):
        parse_battery_reading("42")


def test_reset_runs_on_ctrl_c_and_a_failing_reset_does_not_mask_it() -> None:
    calls: list[list[str]] = []

    def dumpsys(args: list[str]) -> None:
        calls.append(args)
        if args == ["reset"]:
            raise ConnectionError("device gone")

    with pytest.raises(KeyboardInterrupt), battery_unplugged(dumpsys):
        raise KeyboardInterrupt
    assert calls == [["unplug"], ["reset"]]
