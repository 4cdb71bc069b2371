"""The emulated device presented like an Android Studio emulator: emulator port range, ``emulator-NNNN``."""

from __future__ import annotations

import subprocess

from harness.devices.adb import AdbDevice, list_serials
from harness.devices.adb_server import adb_binary, private_adb_server
from harness.emulator import EmulatedDevice
from harness.specs import DeviceSpec, load_device


def test_emulator_port_range_device_is_listed_and_reached_like_an_avd() -> None:
    spec = load_device("generic-phone").model_copy(
        update={"name": "avd-x86_64", "abi": "x86_64", "model": "sdk_gphone64_x86_64"}
    )
    # its own adb server, already running (as Android Studio's is): the device announces itself with
    # host:emulator:<port>, like the emulator, and the server connects to it (no `adb connect`)
    with private_adb_server():
        subprocess.run([adb_binary(), "start-server"], capture_output=True, timeout=30, check=True)
        _check_listed_like_an_avd(spec)


def _check_listed_like_an_avd(spec: DeviceSpec) -> None:
    with EmulatedDevice(spec, as_emulator=True) as avd:
        assert 5555 <= avd.port <= 5585 and avd.port % 2 == 1
        assert avd.serial == f"emulator-{avd.port - 1}"
        assert avd.serial in list_serials()
        selected = subprocess.run(  # `adb -e`: the only emulator
            [adb_binary(), "-e", "shell", "getprop", "ro.product.cpu.abi"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert selected.returncode == 0 and selected.stdout.strip() == "x86_64"
        device = AdbDevice(avd.serial)
        facts = device.facts()
        assert facts.abi == "x86_64" and facts.model == "sdk_gphone64_x86_64"
        assert device.device_state().big is not None
