"""A private adb server for the duration of a block: its own port, stopped when the block ends.

The adb server on the default port 5037 belongs to the user (their phones, their Android Studio).
Tests, benchmarks and the demo start their own on a free port instead: ``ANDROID_ADB_SERVER_PORT`` is
honoured by the adb binary and by adbutils alike, so every adb call inside the block — the harness's,
the emulated device's ``adb connect``, child processes' — talks to the private server, and the user's
server is neither used nor stopped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = [
    "ADB_PORT_ENV",
    "DEFAULT_ADB_PORT",
    "adb_binary",
    "adb_server_port",
    "kill_adb_server",
    "port_open",
    "private_adb_server",
    "stop_adb_server_we_start",
]

ADB_PORT_ENV = "ANDROID_ADB_SERVER_PORT"
DEFAULT_ADB_PORT = 5037
_EMULATOR_PORTS = range(5554, 5586)  # the adb server treats listeners there as emulators


def adb_binary() -> str:
    """The adb client binary: ``$ADBUTILS_ADB_PATH``, else ``adb`` on PATH, else adbutils' bundled one."""
    import adbutils

    return str(adbutils.adb_path())


def adb_server_port() -> int:
    """The port adb calls in this process go to (``$ANDROID_ADB_SERVER_PORT``, default 5037)."""
    try:
        return int(os.environ.get(ADB_PORT_ENV, DEFAULT_ADB_PORT))
    except ValueError:
        return DEFAULT_ADB_PORT


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (TCP)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _EMULATOR_PORTS and port != DEFAULT_ADB_PORT:
            return port


def kill_adb_server(port: int, *, timeout_s: float = 15.0) -> bool:
    """``adb kill-server`` on ``port``; True once nothing listens there any more."""
    env = {**os.environ, ADB_PORT_ENV: str(port)}
    if port_open(port):
        with suppress(OSError, subprocess.TimeoutExpired):  # then the wait below says whether it stopped
            subprocess.run(
                [adb_binary(), "kill-server"], env=env, capture_output=True, check=False, timeout=timeout_s
            )
    deadline = time.monotonic() + timeout_s
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not port_open(port)


@contextmanager
def private_adb_server() -> Iterator[int]:
    """Point adb at a fresh free port for the block (the server starts on first use); stop it after.

    Yields the port. The previous ``ANDROID_ADB_SERVER_PORT`` is restored, whatever happens.
    """
    previous = os.environ.get(ADB_PORT_ENV)
    port = _free_port()
    os.environ[ADB_PORT_ENV] = str(port)
    try:
        yield port
    finally:
        kill_adb_server(port)
        if previous is None:
            os.environ.pop(ADB_PORT_ENV, None)
        else:
            os.environ[ADB_PORT_ENV] = previous


@contextmanager
def stop_adb_server_we_start() -> Iterator[int]:
    """For a block that may start the adb server (``adb connect`` of an emulated device): if none was
    listening on the port adb uses before the block, stop the one that is there after it.

    Yields the port. A server the user already had running is left alone.
    """
    port = adb_server_port()
    started_here = not port_open(port)
    try:
        yield port
    finally:
        if started_here:
            kill_adb_server(port)
