"""The adb retry policy: failures in transit are retried with backoff, local errors fail at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from adbutils.errors import AdbError

from harness.devices.adb import AdbDevice, RetryPolicy
from models.errors import DeviceDisconnectedError, DeviceError


def _device(connected: bool) -> AdbDevice:
    """An AdbDevice without an adb server behind it: only the retry logic is exercised."""
    device = AdbDevice.__new__(AdbDevice)
    device.serial = "test-serial"
    device.retry = RetryPolicy(attempts=3, backoff_s=0.0)
    device.is_connected = lambda: connected  # type: ignore[method-assign]
    return device


def _failing(exc: Exception, calls: list[int]) -> Callable[[], None]:
    def action() -> None:
        calls.append(1)
        raise exc

    return action


@pytest.mark.parametrize("exc", [PermissionError(13, "Permission denied"), FileNotFoundError(2, "nope")])
def test_local_os_errors_fail_at_once_and_are_not_a_disconnect(exc: OSError) -> None:
    calls: list[int] = []
    with pytest.raises(DeviceError, match="failed on this host") as info:
        _device(connected=True)._with_retry("push x", _failing(exc, calls))
    assert calls == [1]
    assert not isinstance(info.value, DeviceDisconnectedError)


@pytest.mark.parametrize("exc", [ConnectionResetError("reset"), TimeoutError("slow"), AdbError("offline")])
def test_transient_errors_are_retried_then_reported_as_a_disconnect(exc: Exception) -> None:
    calls: list[int] = []
    with pytest.raises(DeviceDisconnectedError, match="after 3 tries"):
        _device(connected=False)._with_retry("shell ls", _failing(exc, calls))
    assert calls == [1, 1, 1]


def test_a_transient_error_that_clears_is_not_reported() -> None:
    outcomes: list[Exception | None] = [ConnectionResetError("reset"), None]

    def action() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "ok"

    assert _device(connected=True)._with_retry("shell ls", action) == "ok"
