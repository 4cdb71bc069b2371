"""The emulated phone's OS state: file system image, system properties, battery and programs.

One :class:`AndroidSystem` per emulated device; every adb stream's shell and sync service works on it.
The image is laid out like an Android 14 phone seen by the unprivileged ``shell`` user:
``/data/local/tmp`` (holding the builtin ``benchmark_model`` and ``jointdnn_chain_runner``),
``/sdcard``, ``/sys/class/power_supply/battery/*`` (live values from :class:`Battery`),
``/proc/cpuinfo`` and ``/proc/meminfo`` (from the device profile), and ``/system/bin`` stubs.
``/sys/devices/system/cpu/cpuN/cpufreq/*`` and ``/sys/class/thermal/thermal_zoneN/{type,temp}`` follow
the thermal model (:mod:`harness.emulator.thermal`); ``/sys/class/power_supply/usb/online`` says whether
a charger really feeds the battery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.emulator.battery import Battery
from harness.emulator.filesystem import BUILTIN_MARKER, DeviceFilesystem
from harness.emulator.process import Program
from harness.specs import DeviceSpec

__all__ = [
    "BATTERY_SYSFS",
    "BUILTIN_FILES",
    "CPU_SYSFS",
    "THERMAL_SYSFS",
    "AndroidSystem",
    "system_properties",
]

log = logging.getLogger(__name__)

BATTERY_SYSFS = "/sys/class/power_supply/battery"
CPU_SYSFS = "/sys/devices/system/cpu"
THERMAL_SYSFS = "/sys/class/thermal"
# Device path -> builtin program name, installed executable in the image.
BUILTIN_FILES = {
    "/data/local/tmp/benchmark_model": "benchmark_model",
    "/data/local/tmp/jointdnn_chain_runner": "jointdnn_chain_runner",
    "/data/local/tmp/jointdnn_sd_rebuild": "jointdnn_sd_rebuild",
}


def system_properties(profile: DeviceSpec, serial: str) -> dict[str, str]:
    """``getprop`` values derived from the device profile (``ro.*`` are read-only)."""
    abi = profile.abi
    abilist = {
        "arm64-v8a": "arm64-v8a,armeabi-v7a,armeabi",
        "armeabi-v7a": "armeabi-v7a,armeabi",
        "x86_64": "x86_64,x86",
    }.get(abi, abi)
    return {
        "ro.product.model": profile.model,
        "ro.product.manufacturer": profile.manufacturer,
        "ro.product.brand": profile.manufacturer.lower(),
        "ro.product.name": profile.name,
        "ro.product.device": profile.name,
        "ro.product.board": "jointdnn",
        "ro.product.cpu.abi": abi,
        "ro.product.cpu.abilist": abilist,
        "ro.build.version.sdk": str(profile.sdk),
        "ro.build.version.release": profile.release,
        "ro.build.type": "userdebug",
        "ro.build.tags": "test-keys",
        "ro.build.fingerprint": f"jointdnn/{profile.name}/{profile.name}:{profile.release}/EMU/1:userdebug/test-keys",
        "ro.hardware": "jointdnn",
        "ro.kernel.qemu": "0",
        "ro.serialno": serial,
        "ro.boot.serialno": serial,
        "ro.jointdnn.emulated": "1",
        "ro.jointdnn.profile": profile.name,
        "sys.boot_completed": "1",
        "dev.bootcomplete": "1",
        "init.svc.adbd": "running",
        "persist.sys.timezone": "UTC",
    }


class AndroidSystem:
    """File system + properties + battery + program table of one emulated device."""

    def __init__(self, spec: DeviceSpec, root: Path, *, serial: str, programs: dict[str, Program]):
        self.spec = spec
        self.serial = serial
        self.fs = DeviceFilesystem(root)
        self.battery = Battery(spec)
        self.programs = programs  # command name -> program (echo, cat, getprop, ...)
        self.builtin_files: dict[str, Program] = {}  # builtin name -> program (benchmark_model, ...)
        self._props = system_properties(spec, serial)
        self._props_lock = threading.Lock()
        self._processes: dict[int, list[str]] = {}  # pid -> argv of the programs running now
        self._next_pid = 1000
        self._proc_lock = threading.Lock()
        self._daemons: dict[int, threading.Event] = {}  # pid -> stop event of a background program
        self._boot_s = time.monotonic()  # CLOCK_BOOTTIME zero (/proc/uptime, perfetto timestamps)
        self.largest_output_write = 0  # bytes: the biggest single write of program output to an adb stream
        self._install_image()

    # --- processes ----------------------------------------------------------------------------------
    @contextmanager
    def running(self, argv: list[str]) -> Iterator[int]:
        """Enter a program in the process table while it runs (``ps``, tests); yields its pid."""
        with self._proc_lock:
            pid = self._next_pid
            self._next_pid += 1
            self._processes[pid] = list(argv)
        try:
            yield pid
        finally:
            with self._proc_lock:
                self._processes.pop(pid, None)

    def start_daemon(self, argv: list[str], run: Callable[[threading.Event], None]) -> int:
        """Run ``run(stop)`` in the background (``perfetto --background``); returns its pid.

        It stays in the process table until ``run`` returns; :meth:`stop_daemon` sets ``stop``.
        """
        stop = threading.Event()
        with self._proc_lock:
            pid = self._next_pid
            self._next_pid += 1
            self._processes[pid] = list(argv)
            self._daemons[pid] = stop

        def main() -> None:
            try:
                run(stop)
            except Exception:  # a broken daemon must not take the device down
                log.exception("background program %s crashed", argv[0])
            finally:
                with self._proc_lock:
                    self._processes.pop(pid, None)
                    self._daemons.pop(pid, None)

        threading.Thread(target=main, name=f"emulated-{argv[0]}-{pid}", daemon=True).start()
        return pid

    def daemon_alive(self, pid: int) -> bool:
        with self._proc_lock:
            return pid in self._daemons

    def stop_daemon(self, pid: int) -> None:
        """SIGTERM for a background program: it finishes its work (a trace file) and exits."""
        with self._proc_lock:
            stop = self._daemons.get(pid)
        if stop is not None:
            stop.set()

    def shutdown(self) -> None:
        """Stop every background program (the device is going away)."""
        with self._proc_lock:
            stops = list(self._daemons.values())
        for stop in stops:
            stop.set()

    def uptime_s(self) -> float:
        """Seconds since the device started (CLOCK_BOOTTIME)."""
        return time.monotonic() - self._boot_s

    def processes(self) -> dict[int, list[str]]:
        """pid -> argv of every program running now."""
        with self._proc_lock:
            return {pid: list(argv) for pid, argv in self._processes.items()}

    def note_output_write(self, size: int) -> None:
        """Record one write of program output into an adb stream (keeps :attr:`largest_output_write`)."""
        if size > self.largest_output_write:
            self.largest_output_write = size

    # --- properties ---------------------------------------------------------------------------------
    def getprop(self, key: str) -> str | None:
        with self._props_lock:
            return self._props.get(key)

    def all_props(self) -> dict[str, str]:
        with self._props_lock:
            return dict(sorted(self._props.items()))

    def setprop(self, key: str, value: str) -> None:
        """Set a property; ``ro.*`` ones that already have a value cannot change (PermissionError)."""
        with self._props_lock:
            if key.startswith("ro.") and key in self._props:
                raise PermissionError(f"Failed to set property '{key}' to '{value}'")
            self._props[key] = value

    # --- image --------------------------------------------------------------------------------------
    def _install_image(self) -> None:
        root = self.fs.root
        for folder in (
            "data/local/tmp",
            "data/misc/perfetto-traces",
            "sdcard",
            "storage/emulated",
            "system/bin",
            "dev",
            "proc",
            "vendor",
        ):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "dev" / "null").touch()
        for path, name in BUILTIN_FILES.items():
            host = self.fs.host_path(path)
            host.write_bytes(
                BUILTIN_MARKER + name.encode() + b"\n"
                b"# A program built into the JointDNN emulated Android device (a test device).\n"
            )
            host.chmod(0o755)
        for name, read in self.battery.sysfs_files().items():
            self.fs.add_virtual(f"{BATTERY_SYSFS}/{name}", read)
        self.fs.add_virtual("/proc/cpuinfo", lambda: self._cpuinfo().encode())
        self.fs.add_virtual("/proc/meminfo", lambda: _MEMINFO.encode())
        self.fs.add_virtual("/proc/uptime", lambda: f"{self.uptime_s():.2f} 0.00\n".encode())
        self._install_cpufreq_and_thermal()
        self.fs.add_virtual("/sys/devices/system/cpu/possible", self._cpu_range)
        self.fs.add_virtual("/sys/devices/system/cpu/online", self._cpu_range)

    def _install_cpufreq_and_thermal(self) -> None:
        """cpufreq per CPU (values of its cluster) and thermal zones, read live from the thermal model."""
        battery = self.battery

        def clock(index: int, attr: str) -> Callable[[], bytes]:
            return lambda: f"{battery.thermal_reading(lambda t: getattr(t.clocks()[index], attr))}\n".encode()

        def zone_temp(index: int) -> Callable[[], bytes]:  # millidegrees °C, like most kernels
            return lambda: (
                f"{battery.thermal_reading(lambda t: round(t.zones()[index][1] * 1000))}\n".encode()
            )

        first = 0
        for index, cluster in enumerate(self.spec.clusters()):
            related = f"{' '.join(str(c) for c in range(first, first + cluster.cpus))}\n".encode()
            static = {
                "cpuinfo_min_freq": f"{cluster.min_khz}\n".encode(),
                "cpuinfo_max_freq": f"{cluster.max_khz}\n".encode(),
                "scaling_min_freq": f"{cluster.min_khz}\n".encode(),
                "scaling_governor": f"{cluster.governor}\n".encode(),
                "scaling_available_governors": b"performance powersave schedutil\n",
                "related_cpus": related,
                "affected_cpus": related,
            }
            for cpu in range(first, first + cluster.cpus):
                folder = f"{CPU_SYSFS}/cpu{cpu}/cpufreq"
                for name, value in static.items():
                    self.fs.add_virtual(f"{folder}/{name}", lambda value=value: value)  # type: ignore[misc]
                self.fs.add_virtual(f"{folder}/scaling_cur_freq", clock(index, "cur_khz"))
                self.fs.add_virtual(f"{folder}/scaling_max_freq", clock(index, "cap_khz"))
            first += cluster.cpus
        for index, (kind, _) in enumerate(battery.thermal.zones()):
            folder = f"{THERMAL_SYSFS}/thermal_zone{index}"
            self.fs.add_virtual(f"{folder}/type", lambda kind=kind: f"{kind}\n".encode())  # type: ignore[misc]
            self.fs.add_virtual(f"{folder}/temp", zone_temp(index))
            self.fs.add_virtual(f"{folder}/mode", lambda: b"enabled\n")
        self.fs.add_virtual(
            "/sys/class/power_supply/usb/online", lambda: f"{int(battery.charger_online())}\n".encode()
        )
        self.fs.add_virtual("/sys/class/power_supply/usb/type", lambda: b"USB\n")

    def _cpu_range(self) -> bytes:
        return f"0-{self.spec.cpu_count - 1}\n".encode()

    def _cpuinfo(self) -> str:
        blocks = []
        for cpu in range(self.spec.cpu_count):
            blocks.append(
                f"processor\t: {cpu}\nBogoMIPS\t: 38.40\n"
                "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp\n"
                "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
                "CPU part\t: 0xd05\nCPU revision\t: 0\n"
            )
        return "\n".join(blocks) + f"\nHardware\t: JointDNN emulated {self.spec.name}\n"


_MEMINFO = """MemTotal:        7812345 kB
MemFree:         1234567 kB
MemAvailable:    3456789 kB
Buffers:           12345 kB
Cached:          2345678 kB
"""
