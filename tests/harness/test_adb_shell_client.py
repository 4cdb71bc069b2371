"""The emulated device driven by ``adb-shell``, a second ADB client independent of the adb server.

adb-shell connects to the device's TCP port directly and, unlike the adb server, waits for the
device's ``CLSE`` after closing a stream and verifies checksums: push, pull, stat and list only work
when the device follows the protocol's close handshake.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp

from harness.emulator import EmulatedDevice

TIMEOUT_S = 5.0  # adb-shell's per-read timeout: a missing CLSE shows up as a TcpTimeoutException


@pytest.fixture(scope="module")
def client() -> Iterator[AdbDeviceTcp]:
    with EmulatedDevice("generic-phone", register=False) as device:
        adb = AdbDeviceTcp("127.0.0.1", device.port, default_transport_timeout_s=TIMEOUT_S)
        assert adb.connect(rsa_keys=None, auth_timeout_s=1.0)  # the emulated device asks for no AUTH
        assert adb.available
        try:
            yield adb
        finally:
            adb.close()


def test_shell_output_and_exit_status(client: AdbDeviceTcp) -> None:
    out = client.shell("echo hello; false; echo status=$?", read_timeout_s=TIMEOUT_S)
    assert out == "hello\nstatus=1\n"
    assert client.shell("getprop ro.product.model").strip() == "JointDNN Emulated Phone"


def test_push_pull_20_mb_keeps_sha256(client: AdbDeviceTcp, tmp_path: Path) -> None:
    payload = os.urandom(20 * 1024 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    source, back = tmp_path / "big.bin", tmp_path / "back.bin"
    source.write_bytes(payload)
    client.push(str(source), "/data/local/tmp/adbshell/big.bin", read_timeout_s=TIMEOUT_S)
    client.pull("/data/local/tmp/adbshell/big.bin", str(back), read_timeout_s=TIMEOUT_S)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest
    assert client.shell("sha256sum /data/local/tmp/adbshell/big.bin").split()[0] == digest

    mode, size, _mtime = client.stat("/data/local/tmp/adbshell/big.bin")
    assert stat.S_ISREG(mode) and size == len(payload)
    mode, _, _ = client.stat("/data/local/tmp/adbshell")
    assert stat.S_ISDIR(mode)
    entries = {bytes(entry.filename).decode(): entry for entry in client.list("/data/local/tmp/adbshell")}
    assert set(entries) == {".", "..", "big.bin"} and entries["big.bin"].size == len(payload)
    client.shell("rm -r /data/local/tmp/adbshell")
