"""An emulated Android device that the real adb server connects to (a test device, loopback only).

It speaks the device side of the ADB transport protocol over TCP (:mod:`.transport`, :mod:`.protocol`),
serves ``shell`` (v1 and shell_v2), ``exec`` and ``sync`` (:mod:`.services`, :mod:`.sync_service`) on an
Android-like image (:mod:`.system`, :mod:`.filesystem`) with a small POSIX shell (:mod:`.shell`), a
battery that follows the device profile's power model (:mod:`.battery`), and the builtin programs
``benchmark_model`` and ``jointdnn_chain_runner`` running LiteRT (:mod:`.programs`).
"""

from __future__ import annotations

from harness.emulator.battery import Battery
from harness.emulator.device import EmulatedDevice, adb_binary, serial_number

__all__ = ["Battery", "EmulatedDevice", "adb_binary", "serial_number"]
