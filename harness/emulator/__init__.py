"""An emulated Android device that the real adb server connects to (a test device, loopback only).

**Boundary.** It is a test double (what CI profiles against instead of a phone) *and* a product
feature (``--device emulated``, ``jointdnn demo``, ``jointdnn emulator start``), and either way the rest
of JointDNN reaches it only through the adb protocol, exactly like a phone: :class:`EmulatedDevice`
starts one and names its serial; everything after that goes through ``harness.devices.adb`` and the
adb server. Only the modules that start a device import this package, and only the names in
``__all__``; nothing here imports the harness that drives it (``tests/harness/test_emulator_boundary.py``
checks both).

It speaks the device side of the ADB transport protocol over TCP (:mod:`.transport`, :mod:`.protocol`),
serves ``shell`` (v1 and shell_v2), ``exec`` and ``sync`` (:mod:`.services`, :mod:`.sync_service`) on an
Android-like image (:mod:`.system`, :mod:`.filesystem`) with a small shell for command lines
(:mod:`.shell`: quoting, ``$VAR``, pipes, redirections, ``;`` ``&&`` ``||``; no control flow), a
battery that follows the device profile's power model (:mod:`.battery`), and the builtin programs
``benchmark_model`` and ``jointdnn_chain_runner`` running LiteRT (:mod:`.programs`).
"""

from __future__ import annotations

from harness.emulator.battery import Battery
from harness.emulator.device import EmulatedDevice, adb_binary, serial_number

__all__ = ["Battery", "EmulatedDevice", "adb_binary", "serial_number"]
