"""``EmulatedDevice``: a test Android device that the real adb server connects to over TCP.

    with EmulatedDevice("generic-phone") as device:      # listens on 127.0.0.1:<free port>
        adbutils.AdbClient().device(device.serial).shell("getprop ro.product.model")

It listens on loopback only unless told otherwise (it is a test device: no authentication), never on
5555-5585 (the adb server would auto-register it as an emulator), and registers itself with
``adb connect host:port`` on the adb server (started if needed) using ``adb`` from PATH or the binary
bundled with adbutils (as :func:`adbutils.adb_path` picks it). Several devices with different profiles can run in one process.

``as_emulator=True`` instead presents it the way an Android Studio emulator (AVD) presents itself: it
listens on a free adb port of the emulator range (odd ports 5555-5585, from the top, so real AVDs
starting at 5554/5555 keep theirs), does not ``adb connect``, and announces itself to the adb server with
``host:emulator:<port>`` as the emulator does (a server that starts later finds it by its start-up scan
of that range, unless started with ``ADB_EMU=0``); the server lists it as ``emulator-<port - 1>``, so
``adb -e`` and ``-s emulator-NNNN`` reach it like an AVD.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from harness.devices.adb_server import adb_binary, adb_server_port
from harness.emulator.android_commands import ANDROID_PROGRAMS
from harness.emulator.battery import Battery
from harness.emulator.commands import FILE_PROGRAMS
from harness.emulator.perfetto_tool import PERFETTO_PROGRAMS
from harness.emulator.programs import BUILTIN_PROGRAMS
from harness.emulator.protocol import connect_banner
from harness.emulator.services import make_resolver
from harness.emulator.system import AndroidSystem
from harness.emulator.transport import ADB_EMULATOR_PORTS, TransportServer
from harness.specs import DeviceSpec, load_device
from models.errors import DeviceError

__all__ = ["EmulatedDevice", "adb_binary", "serial_number"]

log = logging.getLogger(__name__)

_ADB_TIMEOUT_S = 30.0  # starting the adb server can take a few seconds on a loaded machine


def _free_emulator_port(host: str) -> int:
    """The highest odd port in 5555-5585 free on ``host`` (the adb server scans the odd ones)."""
    for port in range(ADB_EMULATOR_PORTS.stop - 1, ADB_EMULATOR_PORTS.start - 1, -1):
        if port % 2 == 0:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise DeviceError(f"every adb port of the emulator range 5555-5585 is taken on {host}")


def serial_number(profile: DeviceSpec) -> str:
    """``ro.serialno`` of an emulated device: stable per profile, so measured profiles keep their folder."""
    return f"emulated-{profile.name}"


class EmulatedDevice:
    """An emulated Android phone: ADB transport server + device image + battery model."""

    def __init__(
        self,
        spec: str | DeviceSpec = "generic-phone",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        root_dir: Path | None = None,
        register: bool = True,
        as_emulator: bool = False,
    ):
        self.spec = spec if isinstance(spec, DeviceSpec) else load_device(spec)
        self.host = host
        self.requested_port = port
        self.register = register and not as_emulator
        self.as_emulator = as_emulator
        self._own_root = root_dir is None
        self.root_dir = Path(root_dir) if root_dir is not None else None
        self.system: AndroidSystem | None = None
        self._server: TransportServer | None = None
        self._registered = False
        self._port: int | None = None  # kept after stop(), so .serial still names the device

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> EmulatedDevice:
        """Build the image, listen, and (if ``register``) ``adb connect`` to it; returns ``self``.

        After :meth:`kill`, starts again on the same port with the same image (the phone "comes back").
        """
        if self._server is not None:
            return self
        if self.system is None:
            if self.root_dir is None:
                self.root_dir = Path(tempfile.mkdtemp(prefix=f"jointdnn-emu-{self.spec.name}-"))
            self.root_dir.mkdir(parents=True, exist_ok=True)
            self.system = AndroidSystem(
                self.spec,
                self.root_dir,
                serial=serial_number(self.spec),
                programs={**FILE_PROGRAMS, **ANDROID_PROGRAMS, **PERFETTO_PROGRAMS},
            )
            self.system.builtin_files.update(BUILTIN_PROGRAMS)
        banner = connect_banner(self.system.all_props())
        port = self._port if self._port is not None else self.requested_port
        if self.as_emulator and port == 0:
            port = _free_emulator_port(self.host)
        self._server = TransportServer(
            banner, make_resolver(self.system), host=self.host, port=port, emulator_port=self.as_emulator
        )
        self._server.start()
        self._port = self._server.port
        atexit.register(self.stop)  # a crashed caller still runs `adb disconnect` at interpreter exit
        log.info("emulated device %s listening on %s", self.spec.name, self.serial)
        if self.register or self.as_emulator:
            try:
                if self.register:
                    self._adb_connect()
                else:
                    self._await_emulator_listing()
            except BaseException:
                self.stop()
                raise
        return self

    def kill(self) -> None:
        """Vanish abruptly, like a phone whose cable is pulled: every connection drops, no ``adb disconnect``.

        The adb server sees the device go offline; running programs see their streams close. The image
        and battery are kept, and :meth:`start` brings the device back on the same port.
        """
        if self._server is not None:
            self._server.stop()
            self._server = None

    def stop(self) -> None:
        """``adb disconnect`` (if registered), close every connection, remove a temporary image."""
        if self._registered:
            self._run_adb("disconnect", self.serial, check=False)
            self._registered = False
        atexit.unregister(self.stop)
        self.kill()
        if self.system is not None:
            self.system.shutdown()
        self.system = None
        if self._own_root and self.root_dir is not None:
            shutil.rmtree(self.root_dir, ignore_errors=True)
            self.root_dir = None

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        where = f"{self.host}:{self._port}" if self._port is not None else "not started"
        return f"EmulatedDevice({self.spec.name!r}, {where}, {state})"

    def __enter__(self) -> EmulatedDevice:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- facts --------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise DeviceError(
                "the emulated device is not started; call start() or use it as a context manager"
            )
        return self._port

    @property
    def serial(self) -> str:
        """The adb serial: ``host:port``, or ``emulator-<port - 1>`` when presented as an emulator."""
        if self.as_emulator:
            return f"emulator-{self.port - 1}"
        return f"{self.host}:{self.port}"

    @property
    def battery(self) -> Battery:
        return self._system().battery

    def _system(self) -> AndroidSystem:
        if self.system is None:
            raise DeviceError(
                "the emulated device is not started; call start() or use it as a context manager"
            )
        return self.system

    def device_path(self, path: str) -> Path:
        """Host path of a device path (tests read the image directly)."""
        return self._system().fs.host_path(path)

    # --- adb server ---------------------------------------------------------------------------------
    def _run_adb(self, *args: str, check: bool = True) -> str:
        command = [adb_binary(), *args]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_ADB_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            if not check:
                return ""
            raise DeviceError(f"`{' '.join(command)}` failed: {exc}") from None
        output = (done.stdout + done.stderr).strip()
        if check and done.returncode != 0:
            raise DeviceError(f"`{' '.join(command)}` exited with {done.returncode}: {output}")
        return output

    def _await_emulator_listing(self) -> None:
        """Announce this device to the adb server as an emulator does, then wait until it is listed.

        The adb server scans 5555-5585 only when it starts; an emulator that boots later announces
        itself with the host request ``host:emulator:<adb port>`` (what Android Studio's emulator
        sends), and the server then connects to that port.
        """
        self._run_adb("start-server", check=False)
        request = f"host:emulator:{self.port}".encode()
        try:
            with socket.create_connection(("127.0.0.1", adb_server_port()), timeout=5.0) as conn:
                conn.sendall(f"{len(request):04x}".encode() + request)
        except OSError as exc:
            raise DeviceError(f"cannot reach the adb server on port {adb_server_port()}: {exc}") from None
        deadline = time.monotonic() + _ADB_TIMEOUT_S
        state = ""
        while time.monotonic() < deadline:
            state = self._run_adb("-s", self.serial, "get-state", check=False)
            if state == "device":
                return
            time.sleep(0.2)
        raise DeviceError(
            f"the adb server did not list the emulated device as {self.serial} (state: {state!r}) after "
            "its host:emulator announcement"
        )

    def _adb_connect(self) -> None:
        output = self._run_adb("connect", self.serial)
        if "connected to" not in output:
            raise DeviceError(f"adb could not connect to the emulated device at {self.serial}: {output}")
        self._registered = True
        deadline = time.monotonic() + _ADB_TIMEOUT_S
        state = ""
        while time.monotonic() < deadline:
            state = self._run_adb("-s", self.serial, "get-state", check=False)
            if state == "device":
                return
            time.sleep(0.05)
        raise DeviceError(f"the emulated device {self.serial} did not come online in adb (state: {state!r})")
