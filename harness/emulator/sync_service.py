"""The ``sync:`` service: adb's file transfer protocol (push, pull, stat, ls), device side.

Requests are ``<4-byte id><uint32 LE length><length bytes>``: ``STAT``/``STA2``/``LST2``/``LIST``/
``LIS2``/``RECV`` carry a path, ``SEND`` carries ``path,mode`` and is followed by ``DATA`` chunks
(<= 64 KiB each) and ``DONE <mtime>``. Requests and chunks arrive split across WRTE packets or several
per packet, so everything is read through :meth:`Stream.read_exact`. Replies are buffered and sent in
WRTE packets of the negotiated maximum payload (1 MiB with current adb), which is what makes pulls fast.

Reply layouts (little-endian, from adb's ``file_sync_protocol.h``):
``STAT mode size mtime`` (3 x uint32); ``STA2``/``LST2``: error u32, dev u64, ino u64, mode u32,
nlink u32, uid u32, gid u32, size u64, atime i64, mtime i64, ctime i64; ``DENT mode size mtime namelen
name``; ``DNT2`` = the v2 stat fields + namelen + name; ``DONE`` padded to the entry size;
``DATA len bytes``; ``OKAY 0``; ``FAIL len message``.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
import struct

from harness.emulator.system import AndroidSystem
from harness.emulator.transport import Stream

__all__ = ["SYNC_DATA_MAX", "serve_sync"]

SYNC_DATA_MAX = 64 * 1024  # bytes: the largest DATA chunk either side may send
_MAX_PATH = 1024  # bytes, as adbd
_STAT_V1 = struct.Struct("<III")  # mode, size, mtime
_STAT_V2 = struct.Struct("<IQQIIIIQqqq")  # error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
_SHELL_UID = 2000  # files in /data/local/tmp belong to the shell user


class _Replies:
    """Buffers replies and sends them in large WRTE packets."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.buffer = bytearray()
        self.limit = stream.connection.max_payload

    def add(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.limit:
            chunk = bytes(self.buffer[: self.limit])
            del self.buffer[: self.limit]
            self.stream.write(chunk)

    def flush(self) -> None:
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            self.stream.write(data)

    def fail(self, message: str) -> None:
        encoded = message.encode()
        self.add(b"FAIL" + struct.pack("<I", len(encoded)) + encoded)
        self.flush()


class _Requests:
    """Reads requests through a local buffer: one ``Stream.read`` yields many small DATA chunks."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.buffer = bytearray()

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.stream.read(1 << 20)
            if not data:
                raise EOFError(f"stream closed with {len(self.buffer)} of {size} bytes")
            self.buffer += data
        chunk = bytes(self.buffer[:size])
        del self.buffer[:size]
        return chunk


def serve_sync(stream: Stream, system: AndroidSystem) -> None:
    """Serve sync requests until ``QUIT`` or the host closes the stream."""
    replies = _Replies(stream)
    requests = _Requests(stream)
    while True:
        try:
            header = requests.read_exact(8)
        except EOFError:
            return
        tag, length = header[:4], struct.unpack("<I", header[4:])[0]
        if tag == b"QUIT":
            return
        if length > _MAX_PATH:
            replies.fail(f"path too long: {length} bytes")
            return
        argument = requests.read_exact(length).decode("utf-8", "replace")
        if tag == b"STAT":
            replies.add(b"STAT" + _stat_v1(system, argument))
        elif tag in (b"STA2", b"LST2"):
            replies.add(tag + _stat_v2(system, argument))
        elif tag in (b"LIST", b"LIS2"):
            _list(system, argument, replies, v2=tag == b"LIS2")
        elif tag == b"RECV":
            _recv(system, argument, replies)
        elif tag == b"SEND":
            if not _send(requests, system, argument, replies):
                return
        else:
            replies.fail(
                f"unknown sync request {tag!r} (this device supports STAT/STA2/LST2/LIST/LIS2/SEND/RECV)"
            )
            return
        replies.flush()


def _stat_v1(system: AndroidSystem, path: str) -> bytes:
    try:
        st = system.fs.stat(path)
    except OSError:
        return _STAT_V1.pack(0, 0, 0)  # v1 has no error field: all zeros means "does not exist"
    return _STAT_V1.pack(st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF)


def _v2_fields(st: os.stat_result) -> tuple[int, ...]:
    return (
        0,
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_nlink,
        _SHELL_UID,
        _SHELL_UID,
        st.st_size,
        int(st.st_atime),
        int(st.st_mtime),
        int(st.st_ctime),
    )


def _stat_v2(system: AndroidSystem, path: str) -> bytes:
    try:
        st = system.fs.stat(path)
    except OSError as exc:
        return _STAT_V2.pack(exc.errno or errno.ENOENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT_V2.pack(*_v2_fields(st))


def _list(system: AndroidSystem, path: str, replies: _Replies, *, v2: bool) -> None:
    fs = system.fs
    try:
        names = [".", "..", *fs.listdir(path)] if fs.is_dir(path) else []
    except OSError:
        names = []
    for name in names:
        try:
            st = fs.stat(f"{path.rstrip('/')}/{name}")
        except OSError:
            continue
        encoded = name.encode()
        if v2:
            replies.add(b"DNT2" + _STAT_V2.pack(*_v2_fields(st)) + struct.pack("<I", len(encoded)) + encoded)
        else:
            fields = _STAT_V1.pack(st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
            replies.add(b"DENT" + fields + struct.pack("<I", len(encoded)) + encoded)
    done_size = _STAT_V2.size + 4 if v2 else _STAT_V1.size + 4  # DONE padded to an entry's size
    replies.add(b"DONE" + bytes(done_size))


def _recv(system: AndroidSystem, path: str, replies: _Replies) -> None:
    try:
        handle = system.fs.open_read(path)
    except OSError as exc:
        replies.fail(
            f"remote object '{path}' does not exist" if exc.errno == errno.ENOENT else str(exc.strerror)
        )
        return
    with handle:
        while chunk := handle.read(SYNC_DATA_MAX):
            replies.add(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
    replies.add(b"DONE" + bytes(4))


def _send(requests: _Requests, system: AndroidSystem, argument: str, replies: _Replies) -> bool:
    """Receive one file; False if the stream must close after a failure (as adbd does)."""
    path, _, mode_text = argument.rpartition(",")
    if not path:
        path, mode_text = argument, "33188"  # 0o100644
    try:
        mode = int(mode_text)
    except ValueError:
        mode = 0o100644
    fs = system.fs
    error: str | None = None
    handle = None
    if statmod.S_ISLNK(mode):
        error = f"symlinks are not supported on this emulated device: {path}"
    else:
        try:
            parent = fs.normalize(path).rsplit("/", 1)[0] or "/"
            if not fs.is_dir(parent) and fs.is_writable_location(parent):
                fs.mkdir(parent, parents=True)  # the fixed_push_mkdir feature
            handle = fs.open_write(path, mode=statmod.S_IMODE(mode))
            fs.chmod(path, statmod.S_IMODE(mode))  # an existing file takes the pushed mode too
        except OSError as exc:
            error = f"couldn't create file: {exc.strerror}"
    if error is not None:
        replies.fail(error)  # then discard the data until DONE, so the host sees the FAIL
    mtime = 0
    try:
        while True:
            header = requests.read_exact(8)
            tag, size = header[:4], struct.unpack("<I", header[4:])[0]
            if tag == b"DONE":
                mtime = size
                break
            if tag != b"DATA" or size > SYNC_DATA_MAX:
                if handle is not None:
                    replies.fail(f"invalid data message {tag!r} of {size} bytes")
                return False
            data = requests.read_exact(size)
            if handle is not None:
                handle.write(data)
    finally:
        if handle is not None:
            handle.close()
    if error is not None:
        return False
    if mtime:
        fs.set_mtime(path, mtime)
    replies.add(b"OKAY" + bytes(4))
    return True
