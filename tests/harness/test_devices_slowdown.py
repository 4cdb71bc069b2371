"""The emulated phone's clock: slowdown x the thread's CPU time, slept out; host load does not reach it."""

from __future__ import annotations

import pytest

from harness.devices.slowdown import ComputePadding


def test_phone_time_is_slowdown_times_cpu_and_sleeps_the_rest() -> None:
    slept: list[float] = []
    padding = ComputePadding(4.0, sleep=slept.append)
    # 1 ms of CPU in 1.5 ms wall: the phone takes 4 ms, so 2.5 ms are slept
    assert padding.phone_time(0.001, 0.0015) == pytest.approx(0.004)
    assert slept == [pytest.approx(0.0025)]


def test_a_loaded_host_does_not_stretch_the_phones_time() -> None:
    slept: list[float] = []
    padding = ComputePadding(2.0, sleep=slept.append)
    # 1 ms of CPU but 9 ms wall (queued behind other processes): still 2 ms on the phone, no sleep
    assert padding.phone_time(0.001, 0.009) == pytest.approx(0.002)
    assert slept == []
    assert ComputePadding(1.0, sleep=slept.append).phone_time(0.003, 0.005) == pytest.approx(0.003)
