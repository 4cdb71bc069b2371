"""Fixtures of the harness tests: an emulated Android device registered with the real adb server.

``emulated_device`` (session) is an :class:`~harness.emulator.EmulatedDevice` with the generic-phone
profile, already ``adb connect``-ed; ``adb_client`` is an ``adbutils.AdbClient`` on the same adb server
and ``adb_device`` the adbutils handle of the emulated device. Tests that change the battery state
(``dumpsys battery unplug``) must reset it before they end.
"""

from __future__ import annotations

from collections.abc import Iterator

import adbutils
import pytest

from harness.emulator import EmulatedDevice


@pytest.fixture(scope="session")
def emulated_device() -> Iterator[EmulatedDevice]:
    """A started, adb-registered emulated phone (generic-phone profile) shared by the session."""
    with EmulatedDevice("generic-phone") as device:
        yield device


@pytest.fixture(scope="session")
def adb_client(emulated_device: EmulatedDevice) -> adbutils.AdbClient:
    """An adbutils client of the adb server the emulated device is registered with."""
    return adbutils.AdbClient()


@pytest.fixture(scope="session")
def adb_device(adb_client: adbutils.AdbClient, emulated_device: EmulatedDevice) -> adbutils.AdbDevice:
    """The adbutils handle of the emulated device (``shell2(..., v2=True)``, ``sync.push/pull``)."""
    return adb_client.device(emulated_device.serial)
