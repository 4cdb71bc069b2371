"""The emulated device through the real adb server (adbutils' bundled adb): facts, shell, sync, several devices."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import time
from pathlib import Path

import adbutils
import pytest

from harness.emulator import EmulatedDevice, adb_binary


def test_device_is_registered_with_its_profile_facts(
    adb_client: adbutils.AdbClient, emulated_device: EmulatedDevice, adb_device: adbutils.AdbDevice
) -> None:
    listed = {d.serial: d for d in adb_client.list()}
    assert listed[emulated_device.serial].state == "device"
    props = {
        key: adb_device.shell(["getprop", key])
        for key in (
            "ro.product.model",
            "ro.product.manufacturer",
            "ro.product.cpu.abi",
            "ro.build.version.sdk",
            "ro.build.version.release",
            "sys.boot_completed",
            "ro.serialno",
        )
    }
    profile = emulated_device.spec
    assert props == {
        "ro.product.model": profile.model,
        "ro.product.manufacturer": profile.manufacturer,
        "ro.product.cpu.abi": profile.abi,
        "ro.build.version.sdk": str(profile.sdk),
        "ro.build.version.release": profile.release,
        "sys.boot_completed": "1",
        "ro.serialno": f"emulated-{profile.name}",
    }
    assert adb_device.shell("nproc") == str(profile.cpu_count)
    features = set(adb_device.get_features().split(","))
    assert {"shell_v2", "cmd", "stat_v2"} <= features
    assert "delayed_ack" not in features


def test_shell_v2_exit_codes_and_separate_stderr(adb_device: adbutils.AdbDevice) -> None:
    result = adb_device.shell2("echo out; echo err >&2; exit 42", v2=True)
    assert (result.returncode, result.stdout, result.stderr) == (42, "out\n", "err\n")
    assert adb_device.shell2("ls /does/not/exist", v2=True).returncode == 1
    assert adb_device.shell2("no_such_program", v2=True).returncode == 127
    # the legacy shell (v1) learns the status through adbutils' "; echo X4EXIT:$?" suffix
    assert adb_device.shell2("false", v2=False).returncode == 1


def test_pipes_and_redirection_over_adb(adb_device: adbutils.AdbDevice) -> None:
    script = (
        "cd /data/local/tmp && rm -f t.txt; echo b > t.txt; echo c >> t.txt; echo a >> t.txt; "
        "sort < t.txt | head -n 2 > sorted.txt && cat sorted.txt | wc -l && cat sorted.txt"
    )
    result = adb_device.shell2(script, v2=True)
    assert (result.returncode, result.stdout) == (0, "2\na\nb\n")


def test_push_pull_50mb_round_trip(adb_device: adbutils.AdbDevice, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    payload = os.urandom(50 * 2**20)
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    remote = "/data/local/tmp/big.bin"
    adb_device.sync.push(source, remote)
    assert adb_device.sync.stat(remote).size == len(payload)
    assert adb_device.shell(["sha256sum", remote]).split()[0] == digest
    pulled = tmp_path / "pulled.bin"
    adb_device.sync.pull(remote, pulled)
    assert hashlib.sha256(pulled.read_bytes()).hexdigest() == digest
    adb_device.shell(["rm", remote])


def test_adb_command_line_push_pull_and_ls(emulated_device: EmulatedDevice, tmp_path: Path) -> None:
    """The adb client binary's own sync code (STAT v2, LIST) against the device."""
    adb = adb_binary()
    source = tmp_path / "small.bin"
    source.write_bytes(b"x" * 300_000)
    serial = emulated_device.serial
    push = subprocess.run(
        [adb, "-s", serial, "push", str(source), "/sdcard/"], capture_output=True, text=True
    )
    assert push.returncode == 0, push.stderr
    listing = subprocess.run([adb, "-s", serial, "ls", "/sdcard"], capture_output=True, text=True).stdout
    assert "small.bin" in listing
    pulled = tmp_path / "back.bin"
    pull = subprocess.run([adb, "-s", serial, "pull", "/sdcard/small.bin", str(pulled)], capture_output=True)
    assert pull.returncode == 0 and pulled.read_bytes() == source.read_bytes()
    denied = subprocess.run(
        [adb, "-s", serial, "push", str(source), "/system/x.bin"], capture_output=True, text=True
    )
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_push_to_missing_folder_creates_it(adb_device: adbutils.AdbDevice) -> None:
    adb_device.sync.push(b"abc", "/data/local/tmp/new/dir/file.txt")
    assert adb_device.sync.read_text("/data/local/tmp/new/dir/file.txt") == "abc"
    assert adb_device.shell2("rm -r /data/local/tmp/new", v2=True).returncode == 0


def test_two_devices_with_different_profiles_at_once(
    adb_client: adbutils.AdbClient, emulated_device: EmulatedDevice
) -> None:
    with EmulatedDevice("low-end-phone") as second:
        assert second.serial != emulated_device.serial
        serials = {d.serial for d in adb_client.list()}
        assert {second.serial, emulated_device.serial} <= serials
        first_model = adb_client.device(emulated_device.serial).shell("getprop ro.product.model")
        second_model = adb_client.device(second.serial).shell("getprop ro.product.model")
        assert (first_model, second_model) == (emulated_device.spec.model, second.spec.model)
        adb_client.device(second.serial).sync.push(b"only here", "/data/local/tmp/mark.txt")
        assert (
            adb_client.device(emulated_device.serial)
            .shell2("cat /data/local/tmp/mark.txt", v2=True)
            .returncode
            == 1
        )
    assert second.serial not in {d.serial for d in adb_client.list()}


def test_reserved_emulator_ports_are_refused() -> None:
    from models.errors import UsageError

    with pytest.raises(UsageError, match="5555-5585"):
        EmulatedDevice(port=5557, register=False).start()


def test_killed_device_goes_offline_and_comes_back_with_its_files(adb_client: adbutils.AdbClient) -> None:
    with EmulatedDevice("low-end-phone") as device:
        handle = adb_client.device(device.serial)
        handle.sync.push(b"kept", "/data/local/tmp/kept.txt")
        device.kill()  # as if the cable were pulled: no adb disconnect
        with pytest.raises(adbutils.AdbError):
            handle.shell2("echo hi", v2=True, timeout=5)
        device.start()
        assert handle.shell2("cat /data/local/tmp/kept.txt", v2=True).stdout == "kept"


def test_interactive_pty_shell_echoes_and_reports_exit(adb_device: adbutils.AdbDevice) -> None:
    """``adb shell`` on a terminal: prompt, echo, CR/LF translation, stderr merged, exit status."""
    connection = adb_device.open_transport()
    connection.send_command("shell,v2,TERM=xterm,pty:")
    connection.check_okay()
    for line in (b"echo hi\r", b"ls /nope\r", b"exit 4\r"):
        connection.conn.sendall(struct.pack("<BI", 0, len(line)) + line)
    output, status = b"", None
    while status is None:
        channel, length = struct.unpack("<BI", connection.read_exact(5))
        data = connection.read_exact(length) if length else b""
        if channel == 3:
            status = data[0]
        else:
            output += data
    connection.close()
    assert status == 4
    assert output == (
        b"generic-phone:/ $ echo hi\r\nhi\r\n"
        b"generic-phone:/ $ ls /nope\r\nls: /nope: No such file or directory\r\n"
        b"generic-phone:/ $ exit 4\r\n"
    )


def _terminal_signals() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A test session started as a background job of
    a non-interactive shell (``cmd &``) inherits SIGINT ignored, and Python then leaves it ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_cli_emulator_start_serves_until_interrupted(stop_signal: str) -> None:
    """``jointdnn emulator start`` registers the device, serves adb, and disconnects on Ctrl-C or SIGTERM."""
    import signal
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "emulator", "start", "--profile", "low-end-phone"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_terminal_signals,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        serial = first.rsplit(" ", 1)[-1].strip()
        assert first.startswith("emulated low-end-phone") and serial.startswith("127.0.0.1:")
        process.stdout.readline()  # "registered with the adb server: ..."
        adb = adb_binary()
        model = subprocess.run(
            [adb, "-s", serial, "shell", "getprop", "ro.product.model"], capture_output=True, text=True
        )
        assert model.stdout.strip() == "JointDNN Emulated Low-End Phone"
        process.send_signal(getattr(signal, stop_signal))
        # `adb disconnect` alone may take up to the device's adb timeout (30 s) on a loaded machine
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate(timeout=10)
            pytest.fail(
                f"emulator start did not stop within 90 s of {stop_signal}; its stderr: {err[-2000:]}"
            )
        assert code == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
    devices = subprocess.run([adb, "devices"], capture_output=True, text=True).stdout
    assert serial not in devices


def _running(adb_device: adbutils.AdbDevice, command: str) -> bool:
    return any(line.endswith(command) for line in adb_device.shell("ps").splitlines())


@pytest.mark.parametrize("command", ["seq 1 100000000", "yes | cat", "seq 1 100000000 | cat -"])
def test_unbounded_output_streams_and_stops_with_its_client(
    emulated_device: EmulatedDevice, adb_device: adbutils.AdbDevice, command: str
) -> None:
    system = emulated_device.system
    assert system is not None
    system.largest_output_write = 0
    connection = adb_device.shell(command, stream=True)
    assert isinstance(connection, adbutils.AdbConnection)
    connection.conn.settimeout(10)
    received = b""
    while len(received) < 200_000:  # output arrives as it is produced, not when the program ends
        chunk = connection.conn.recv(65536)
        assert chunk, received[-100:]
        received += chunk
    assert received.startswith(b"1\n2\n3\n" if "seq" in command else b"y\ny\ny\n")
    time.sleep(0.3)  # the client is not reading: flow control holds the program back, it keeps running
    last = command.split(" | ")[-1]
    assert _running(adb_device, last)
    connection.close()
    deadline = time.monotonic() + 5
    while _running(adb_device, last) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(adb_device, command.split(" | ")[0]) and not _running(adb_device, last)
    assert 0 < system.largest_output_write <= 1024 * 1024  # each write of output is bounded


def test_head_stops_reading_an_endless_pipe(adb_device: adbutils.AdbDevice) -> None:
    started = time.monotonic()
    assert adb_device.shell("yes | head -n 3; seq 1 100000000 | head -n 2") == "y\ny\ny\n1\n2"
    assert adb_device.shell("seq 1 100000 | tail -n 2; seq 5 | tail -c 4") == "99999\n100000\n4\n5"
    assert time.monotonic() - started < 10


def test_forward_to_a_device_tcp_port_reaches_a_local_server(adb_device: adbutils.AdbDevice) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        remote = f"tcp:{server.getsockname()[1]}"
        local = adb_device.forward_port(remote)  # `adb forward tcp:LOCAL tcp:REMOTE`
        try:
            with socket.create_connection(("127.0.0.1", local), timeout=10) as client:
                accepted, _ = server.accept()  # the device connected on behalf of the stream
                with accepted:
                    accepted.settimeout(10)
                    client.sendall(b"ping" * 50_000)  # 200 KB: several WRTEs each way
                    received = b""
                    while len(received) < 200_000:
                        received += accepted.recv(65536)
                    assert received == b"ping" * 50_000
                    accepted.sendall(b"pong\n")
                    assert client.recv(16) == b"pong\n"
                assert client.recv(16) == b""  # the server closed: the forwarded connection closes too
        finally:
            adb_device.forward_remove(f"tcp:{local}")
    assert adb_device.shell("echo still-online") == "still-online"


def test_forward_to_a_closed_device_port_is_refused(adb_device: adbutils.AdbDevice) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        free = probe.getsockname()[1]  # nothing listens here once the probe is closed
    local = adb_device.forward_port(f"tcp:{free}")
    try:
        with socket.create_connection(("127.0.0.1", local), timeout=10) as client:
            client.settimeout(10)
            assert client.recv(16) == b""  # the device refused the OPEN: adb closes the connection
    finally:
        adb_device.forward_remove(f"tcp:{local}")
