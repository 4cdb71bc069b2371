"""Open the device a run executes on: ``local`` (in-process), ``emulated`` (started here), or an adb serial."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.devices.base import Device
from harness.specs import DeviceSpec

__all__ = ["open_device"]


@contextmanager
def open_device(spec: str, power: DeviceSpec) -> Iterator[Device]:
    """Yield the device (``device.name`` names it); an emulated device is started and stopped around it.

    ``spec``: ``local`` — the host runs the device segments in-process (LiteRT) with ``power`` as the
    energy model; ``emulated`` — a fresh emulated Android device registered with the adb server;
    anything else — the serial of an adb device (phone, Android Studio emulator, ``host:port``).
    An adb server that the emulated device's registration started is stopped again afterwards.
    """
    if spec == "local":
        from harness.devices.local import LocalDevice

        yield LocalDevice(power)
        return
    from harness.devices.adb import AdbDevice

    if spec == "emulated":
        from harness.devices.adb_server import stop_adb_server_we_start
        from harness.emulator import EmulatedDevice

        with stop_adb_server_we_start(), EmulatedDevice(spec=power.name) as emulated:
            device = AdbDevice(emulated.serial, power_spec=power)
            try:
                yield device
            finally:
                device.close()
        return
    device = AdbDevice(spec, power_spec=power)
    try:
        yield device
    finally:
        device.close()
