"""The ADB transport of the emulated device, driven by a raw TCP client (no adb server in between).

Covers what adb itself does not exercise on every run: the old (checksummed) protocol version, sync
requests split across and merged into WRTE packets, per-stream flow control, concurrent streams.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from harness.emulator import EmulatedDevice
from harness.emulator.protocol import (
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_WRTE,
    DEVICE_FEATURES,
    HEADER_SIZE,
    ProtocolError,
    checksum,
    connect_banner,
    decode_header,
    encode_packet,
)

OLD_VERSION = 0x01000000  # before "skip checksum": both ends verify data_crc32


class RawHost:
    """A minimal host side of the ADB transport."""

    def __init__(self, port: int, *, version: int = OLD_VERSION, max_payload: int = 256 * 1024):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.pending: list[tuple[int, int, int, bytes]] = []  # packets read early by open()
        self.sock.sendall(encode_packet(A_CNXN, version, max_payload, b"host::features=shell_v2\0"))
        self.banner = self.expect(A_CNXN)

    def read_packet(self, timeout: float = 5.0) -> tuple[int, int, int, bytes]:
        if self.pending:
            return self.pending.pop(0)
        self.sock.settimeout(timeout)
        header = self._read(HEADER_SIZE)
        command, arg0, arg1, length, crc = decode_header(header)
        data = self._read(length)
        assert checksum(data) == crc  # the device fills the checksum in
        return command, arg0, arg1, data

    def _read(self, size: int) -> bytes:
        chunks = b""
        while len(chunks) < size:
            chunk = self.sock.recv(size - len(chunks))
            if not chunk:
                raise EOFError("device closed the connection")
            chunks += chunk
        return chunks

    def expect(self, command: int) -> bytes:
        got, _, _, data = self.read_packet()
        assert got == command, (hex(got), data[:80])
        return data

    def open(self, local_id: int, service: str) -> int:
        self.sock.sendall(encode_packet(A_OPEN, local_id, 0, service.encode() + b"\0"))
        early = []
        while True:  # other streams' packets may arrive before our OKAY: keep them for later
            command, remote_id, arg1, data = self.read_packet()
            if (command, arg1) == (A_OKAY, local_id):
                self.pending.extend(early)
                return remote_id
            early.append((command, remote_id, arg1, data))

    def write(self, local_id: int, remote_id: int, data: bytes) -> None:
        self.sock.sendall(encode_packet(A_WRTE, local_id, remote_id, data))
        assert self.read_packet()[:3] == (A_OKAY, remote_id, local_id)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def device() -> Iterator[EmulatedDevice]:
    with EmulatedDevice("low-end-phone", register=False) as dev:
        yield dev


def test_packets_round_trip_and_checksum_is_a_byte_sum() -> None:
    packet = encode_packet(A_WRTE, 3, 7, b"\x01\x02\xff")
    assert decode_header(packet[:HEADER_SIZE]) == (A_WRTE, 3, 7, 3, 0x102)
    assert checksum(bytes(range(256)) * 64) == sum(range(256)) * 64  # the vectorised path
    with pytest.raises(ProtocolError, match="magic"):
        decode_header(packet[:20] + b"\0\0\0\0")


def test_banner_carries_product_facts_and_no_delayed_ack() -> None:
    banner = connect_banner(
        {"ro.product.name": "p", "ro.product.model": "M", "ro.product.device": "d"}
    ).decode()
    assert banner.startswith("device::ro.product.name=p;ro.product.model=M;ro.product.device=d;features=")
    assert "delayed_ack" not in banner and set(banner.split("features=")[1].split(",")) == set(
        DEVICE_FEATURES
    )


def test_old_protocol_version_negotiates_payload_and_checksums(device: EmulatedDevice) -> None:
    host = RawHost(device.port, max_payload=64 * 1024)
    assert host.banner.startswith(b"device::") and b"model=JointDNN Emulated Low-End Phone" in host.banner
    stream = host.open(1, "shell:echo hello")
    command, _, _, data = host.read_packet()
    assert (command, data) == (A_WRTE, b"hello\n")
    host.sock.sendall(encode_packet(A_OKAY, 1, stream))
    assert host.read_packet()[0] == A_CLSE
    host.close()


def test_bad_checksum_drops_an_old_version_connection(device: EmulatedDevice) -> None:
    host = RawHost(device.port)
    bad = bytearray(encode_packet(A_OPEN, 1, 0, b"shell:echo x\0"))
    bad[16] ^= 0xFF  # corrupt data_crc32
    host.sock.sendall(bytes(bad))
    with pytest.raises((EOFError, ConnectionResetError)):
        host.read_packet()
    host.close()


def test_unknown_service_is_refused_with_clse(device: EmulatedDevice) -> None:
    host = RawHost(device.port)
    host.sock.sendall(encode_packet(A_OPEN, 5, 0, b"framebuffer:\0"))
    assert host.read_packet()[:3] == (A_CLSE, 0, 5)
    host.close()


def _sync_request(tag: bytes, path: str) -> bytes:
    return tag + struct.pack("<I", len(path.encode())) + path.encode()


def test_sync_requests_split_and_merged_across_packets(device: EmulatedDevice) -> None:
    host = RawHost(device.port)
    stream = host.open(1, "sync:")
    payload = bytes(range(256)) * 400  # 102400 bytes: two DATA chunks of <= 64 KiB
    send = _sync_request(b"SEND", "/data/local/tmp/raw.bin,33188")
    for start in range(0, len(payload), 65536):
        chunk = payload[start : start + 65536]
        send += b"DATA" + struct.pack("<I", len(chunk)) + chunk
    send += b"DONE" + struct.pack("<I", 1_700_000_000)
    for start in range(0, len(send), 1000):  # split at arbitrary points, headers included
        host.write(1, stream, send[start : start + 1000])
    command, _, _, data = host.read_packet()
    assert (command, data) == (A_WRTE, b"OKAY\0\0\0\0")
    host.sock.sendall(encode_packet(A_OKAY, 1, stream))
    # STAT + STA2 + RECV merged into one packet; the replies come back in order
    merged = _sync_request(b"STAT", "/data/local/tmp/raw.bin") + _sync_request(b"STA2", "/nope")
    host.write(1, stream, merged + _sync_request(b"RECV", "/data/local/tmp/raw.bin"))
    replies = b""
    while not replies.endswith(b"DONE\0\0\0\0"):
        command, _, _, data = host.read_packet()
        assert command == A_WRTE
        replies += data
        host.sock.sendall(encode_packet(A_OKAY, 1, stream))
    mode, size, mtime = struct.unpack("<III", replies[4:16])
    assert replies[:4] == b"STAT" and (mode, size, mtime) == (0o100644, len(payload), 1_700_000_000)
    assert replies[16:20] == b"STA2" and struct.unpack("<I", replies[20:24])[0] == 2  # ENOENT
    body, received = replies[16 + 4 + 68 :], b""
    while body.startswith(b"DATA"):
        length = struct.unpack("<I", body[4:8])[0]
        received += body[8 : 8 + length]
        body = body[8 + length :]
    assert received == payload and body == b"DONE\0\0\0\0"
    host.close()


def test_flow_control_waits_for_okay_and_streams_interleave(device: EmulatedDevice) -> None:
    host = RawHost(device.port, max_payload=4096)
    slow = host.open(1, "shell:seq 1 3000")  # ~14 KB of output: several WRTE of <= 4096 bytes
    fast = host.open(2, "shell:echo fast")
    first = host.read_packet()
    writes = [first]
    # Until we OKAY the first WRTE of the slow stream, it must not send another one.
    while True:
        try:
            packet = host.read_packet(timeout=0.5)
        except TimeoutError:
            break
        writes.append(packet)
    slow_writes = [p for p in writes if p[0] == A_WRTE and p[2] == 1]
    assert len(slow_writes) == 1 and len(slow_writes[0][3]) <= 4096
    assert any(p[0] == A_WRTE and p[2] == 2 and p[3] == b"fast\n" for p in writes)
    output = slow_writes[0][3]
    host.sock.sendall(encode_packet(A_OKAY, 1, slow))
    while True:
        command, _, target, data = host.read_packet()
        if command == A_CLSE and target == 1:
            break
        if command == A_WRTE and target == 1:
            output += data
            host.sock.sendall(encode_packet(A_OKAY, 1, slow))
    assert output == "".join(f"{n}\n" for n in range(1, 3001)).encode()
    assert fast != slow
    host.close()


def test_bad_checksum_in_an_old_version_cnxn_is_rejected(device: EmulatedDevice) -> None:
    sock = socket.create_connection(("127.0.0.1", device.port), timeout=5)
    bad = bytearray(encode_packet(A_CNXN, OLD_VERSION, 4096, b"host::features=shell_v2\0"))
    bad[16] ^= 0xFF  # corrupt data_crc32: protocol 0x01000000 requires it
    sock.sendall(bytes(bad))
    assert sock.recv(HEADER_SIZE) == b""  # no CNXN back: the device dropped the connection
    sock.close()


def test_cnxn_of_the_skip_checksum_version_may_leave_the_checksum_out(device: EmulatedDevice) -> None:
    sock = socket.create_connection(("127.0.0.1", device.port), timeout=5)
    cnxn = bytearray(encode_packet(A_CNXN, 0x01000001, 4096, b"host::features=shell_v2\0"))
    cnxn[16:20] = b"\0\0\0\0"  # adb >= 29 sends checksum 0
    sock.sendall(bytes(cnxn))
    assert decode_header(sock.recv(HEADER_SIZE))[0] == A_CNXN
    sock.close()


def test_host_close_is_answered_with_one_clse_and_the_stream_is_forgotten(device: EmulatedDevice) -> None:
    host = RawHost(device.port)
    stream = host.open(7, "shell:sleep 30")
    host.sock.sendall(encode_packet(A_CLSE, 7, stream))
    assert host.read_packet()[:3] == (A_CLSE, stream, 7)  # the close handshake: CLSE(dev_id, host_id)
    host.sock.sendall(encode_packet(A_CLSE, 7, stream))  # the stream is gone: a second CLSE is ignored
    host.sock.sendall(encode_packet(A_CLSE, 99, 12345))  # and so is one for a stream that never existed
    with pytest.raises(TimeoutError):
        host.read_packet(timeout=0.5)
    again = host.open(8, "shell:echo again")  # the connection still works
    assert host.read_packet() == (A_WRTE, again, 8, b"again\n")
    host.close()
