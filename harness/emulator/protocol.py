"""ADB transport packets: the 24-byte header, the commands, and the device's CNXN banner.

Every ADB packet is a little-endian header ``command, arg0, arg1, data_length, data_crc32, magic``
(six uint32, 24 bytes) followed by ``data_length`` payload bytes. Despite its name the checksum field is
the plain byte sum of the payload (mod 2**32); adb >= 29 ignores it once both ends speak protocol
version ``0x01000001``, but older hosts and third-party clients verify it, so we always fill it in.
``magic`` is ``command ^ 0xFFFFFFFF``.

Streams: the host sends ``OPEN(host_id, 0, "service\\0")``; the device answers ``OKAY(dev_id, host_id)``
(or ``CLSE(0, host_id)`` to refuse). Data travels in ``WRTE(sender_id, receiver_id, bytes)`` and every
WRTE is acknowledged by an ``OKAY`` before the sender may send the next one on that stream (flow
control). ``CLSE`` ends a stream. We never advertise the ``delayed_ack`` feature, so OKAYs carry no
payload (with delayed_ack the host would expect byte credits in them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "A_AUTH",
    "A_CLSE",
    "A_CNXN",
    "A_OKAY",
    "A_OPEN",
    "A_STLS",
    "A_SYNC",
    "A_VERSION",
    "A_WRTE",
    "DEVICE_FEATURES",
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "Packet",
    "ProtocolError",
    "checksum",
    "command_name",
    "connect_banner",
    "decode_header",
    "encode_packet",
]


def _cmd(tag: bytes) -> int:
    return int(struct.unpack("<I", tag)[0])


A_SYNC: Final = _cmd(b"SYNC")
A_CNXN: Final = _cmd(b"CNXN")
A_OPEN: Final = _cmd(b"OPEN")
A_OKAY: Final = _cmd(b"OKAY")
A_CLSE: Final = _cmd(b"CLSE")
A_WRTE: Final = _cmd(b"WRTE")
A_AUTH: Final = _cmd(b"AUTH")
A_STLS: Final = _cmd(b"STLS")

A_VERSION_MIN: Final = 0x01000000
A_VERSION: Final = 0x01000001  # "skip checksum" version: both ends may ignore data_crc32
MAX_PAYLOAD: Final = 1024 * 1024  # bytes; the largest payload the device accepts (adb's MAX_PAYLOAD)
HEADER_SIZE: Final = 24  # bytes

# What the device claims to support. No "delayed_ack" (see module docstring) and no "sendrecv_v2"
# (the compressed SND2/RCV2 sync variants): hosts then fall back to the classic SEND/RECV requests.
DEVICE_FEATURES: Final = (
    "shell_v2",
    "cmd",
    "stat_v2",
    "ls_v2",
    "fixed_push_mkdir",
    "fixed_push_symlink_timestamp",
)

_HEADER = struct.Struct("<6I")
_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY", A_CLSE: "CLSE", A_WRTE: "WRTE"}
_NAMES |= {A_AUTH: "AUTH", A_STLS: "STLS"}


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid ADB packet (the connection is dropped)."""


@dataclass(frozen=True)
class Packet:
    """One ADB packet (header fields plus payload)."""

    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    def __repr__(self) -> str:  # readable in debug logs: OKAY(3, 7, 0 bytes)
        return f"{command_name(self.command)}({self.arg0}, {self.arg1}, {len(self.data)} bytes)"


def command_name(command: int) -> str:
    """``CNXN``, ``WRTE``, ... or the hex value of an unknown command."""
    return _NAMES.get(command, f"0x{command:08x}")


def checksum(data: bytes) -> int:
    """ADB's "crc32" field: the byte sum of the payload, mod 2**32."""
    if len(data) < 4096:
        return sum(data) & 0xFFFFFFFF
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


def encode_packet(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    """Header + payload, ready for the socket."""
    header = _HEADER.pack(command, arg0, arg1, len(data), checksum(data), command ^ 0xFFFFFFFF)
    return header + data


def decode_header(header: bytes, *, max_payload: int = MAX_PAYLOAD) -> tuple[int, int, int, int, int]:
    """Validate a 24-byte header; returns ``(command, arg0, arg1, data_length, data_checksum)``."""
    if len(header) != HEADER_SIZE:
        raise ProtocolError(f"short header: {len(header)} of {HEADER_SIZE} bytes")
    command, arg0, arg1, length, crc, magic = _HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic 0x{magic:08x} for command {command_name(command)}")
    if length > max_payload:
        raise ProtocolError(f"{command_name(command)} payload of {length} bytes exceeds {max_payload}")
    return command, arg0, arg1, length, crc


def connect_banner(props: dict[str, str], features: tuple[str, ...] = DEVICE_FEATURES) -> bytes:
    """The device's CNXN payload: ``device::ro.product.name=..;ro.product.model=..;..;features=a,b``."""
    keys = ("ro.product.name", "ro.product.model", "ro.product.device")
    fields = [f"{key}={props.get(key, '')}" for key in keys]
    return ("device::" + ";".join([*fields, "features=" + ",".join(features)])).encode()
