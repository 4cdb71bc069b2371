"""The device side of the ADB transport over TCP: connections, the CNXN handshake and streams.

Threads, not asyncio: the services run blocking work (LiteRT inference, file I/O, ``sleep``), so each
stream gets its own thread and each host connection one reader thread. A host connection multiplexes
any number of streams; several host connections (the adb server, a raw test client) may be open at
once.

Flow control, as adbd does it: after sending a ``WRTE`` on a stream we wait for the host's ``OKAY``
before sending the next one. In the other direction we acknowledge the host's ``WRTE`` as soon as its
bytes are buffered, unless the service has fallen more than :data:`INBOX_HIGH_WATER` bytes behind; then
the ``OKAY`` is deferred until the service has read, which stops the host from sending more.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import BinaryIO, cast

from harness.emulator.protocol import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_WRTE,
    HEADER_SIZE,
    MAX_PAYLOAD,
    Packet,
    ProtocolError,
    checksum,
    command_name,
    decode_header,
    encode_packet,
)
from models.errors import UsageError

__all__ = [
    "ADB_EMULATOR_PORTS",
    "INBOX_HIGH_WATER",
    "Connection",
    "ServiceHandler",
    "ServiceResolver",
    "Stream",
    "StreamClosedError",
    "TransportServer",
]

log = logging.getLogger(__name__)

ADB_EMULATOR_PORTS = range(5555, 5586)  # the adb server probes these and auto-registers emulators
INBOX_HIGH_WATER = 4 * 1024 * 1024  # bytes buffered from the host before we hold back its OKAY


class StreamClosedError(BrokenPipeError):
    """The host closed the stream (or the connection dropped) while a service was writing."""


class Stream:
    """One open stream, seen from the service that runs on it: blocking read/write plus close.

    ``read``/``write`` are called from the service thread; the ``_on_*`` methods from the connection's
    reader thread.
    """

    def __init__(self, connection: Connection, local_id: int, remote_id: int, service: str):
        self.connection = connection
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service  # the OPEN payload, e.g. "shell,v2,raw:ls"
        self._cv = threading.Condition()
        self._inbox = bytearray()
        self._ack_deferred = False
        self._can_send = True  # a WRTE may go out: the previous one has been OKAYed
        self._closed = False  # the host closed, or we did
        self.closed_event = threading.Event()  # set when the stream is gone (lets programs stop early)

    # --- service side -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, max_bytes: int = 1 << 20) -> bytes:
        """Up to ``max_bytes`` from the host, blocking until some arrive; ``b""`` once the stream closed."""
        with self._cv:
            while not self._inbox and not self._closed:
                self._cv.wait()
            data = bytes(self._inbox[:max_bytes])
            del self._inbox[:max_bytes]
            send_ack = self._ack_deferred and len(self._inbox) < INBOX_HIGH_WATER
            if send_ack:
                self._ack_deferred = False
        if send_ack:
            self.connection.send(A_OKAY, self.local_id, self.remote_id)
        return data

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes (requests may arrive split across WRTE packets); EOFError if closed."""
        chunks = bytearray()
        while len(chunks) < size:
            data = self.read(size - len(chunks))
            if not data:
                raise EOFError(f"stream closed after {len(chunks)} of {size} bytes")
            chunks += data
        return bytes(chunks)

    def write(self, data: bytes) -> None:
        """Send ``data`` in WRTE packets of at most the negotiated payload, one OKAY at a time."""
        view = memoryview(data)
        step = self.connection.max_payload
        for start in range(0, len(view), step):
            with self._cv:
                while not self._can_send and not self._closed:
                    self._cv.wait()
                if self._closed:
                    raise StreamClosedError(f"stream {self.service!r} was closed by the host")
                self._can_send = False
            self.connection.send(A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + step]))

    def close(self) -> None:
        """Close from the device side (sends CLSE once)."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        self.closed_event.set()
        self.connection.forget(self.local_id)
        with contextlib.suppress(OSError):
            self.connection.send(A_CLSE, self.local_id, self.remote_id)

    # --- connection side ----------------------------------------------------------------------------
    def _on_write(self, data: bytes) -> None:
        with self._cv:
            self._inbox += data
            self._cv.notify_all()
            defer = len(self._inbox) >= INBOX_HIGH_WATER
            self._ack_deferred = defer
        if not defer:
            self.connection.send(A_OKAY, self.local_id, self.remote_id)

    def _on_okay(self) -> None:
        with self._cv:
            self._can_send = True
            self._cv.notify_all()

    def _on_close(self) -> bool:
        """The host closed the stream (or the connection dropped); True if it was still open."""
        with self._cv:
            was_open = not self._closed
            self._closed = True
            self._cv.notify_all()
        self.closed_event.set()
        return was_open


ServiceHandler = Callable[[Stream], None]
ServiceResolver = Callable[[str], ServiceHandler | None]  # OPEN payload -> handler, None to refuse


class Connection:
    """One host connection: reads packets, answers CNXN, opens streams and routes their packets."""

    def __init__(self, sock: socket.socket, banner: bytes, resolve: ServiceResolver, name: str):
        self.sock = sock
        self.banner = banner
        self.resolve = resolve
        self.name = name
        self.max_payload = 4096  # until CNXN negotiates more
        self.version = A_VERSION
        self.connected = False
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._thread = threading.Thread(target=self._run, name=f"adb-conn-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        """Write one packet (thread-safe)."""
        packet = encode_packet(command, arg0, arg1, data)
        with self._send_lock:
            self.sock.sendall(packet)

    def forget(self, local_id: int) -> None:
        with self._streams_lock:
            self._streams.pop(local_id, None)

    def close(self) -> None:
        """Drop the connection and close every stream (their services see EOF / StreamClosedError)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        with self._streams_lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream._on_close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # --- reader thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        rfile = cast(BinaryIO, self.sock.makefile("rb", buffering=256 * 1024))
        try:
            while True:
                packet = self._read_packet(rfile)
                if packet is None:
                    break
                self._dispatch(packet)
        except (OSError, ProtocolError) as exc:
            log.debug("connection %s dropped: %s", self.name, exc)
        finally:
            rfile.close()
            self.close()

    def _read_packet(self, rfile: BinaryIO) -> Packet | None:
        header = rfile.read(HEADER_SIZE)
        if not header:
            return None
        command, arg0, arg1, length, crc = decode_header(header, max_payload=MAX_PAYLOAD)
        data = rfile.read(length) if length else b""
        if len(data) != length:
            raise ProtocolError(f"{command_name(command)} payload cut short: {len(data)} of {length} bytes")
        # Before "skip checksum" (0x01000001) the checksum is mandatory. A CNXN announces the host's
        # version itself, so it is checked against that, not against what an earlier CNXN negotiated.
        version = min(arg0, A_VERSION) if command == A_CNXN else self.version
        if version < A_VERSION and checksum(data) != crc:
            raise ProtocolError(
                f"{command_name(command)} payload checksum mismatch (protocol 0x{version:08x} requires it)"
            )
        return Packet(command, arg0, arg1, data)

    def _dispatch(self, packet: Packet) -> None:
        if packet.command == A_CNXN:
            self._on_connect(packet)
        elif not self.connected:
            if packet.command != A_AUTH:  # we never ask for AUTH; anything else before CNXN is bogus
                raise ProtocolError(f"{packet!r} before CNXN")
        elif packet.command == A_OPEN:
            self._on_open(packet)
        else:
            with self._streams_lock:
                stream = self._streams.get(packet.arg1)
            if stream is None:
                return  # late OKAY/WRTE/CLSE for a stream that is gone: ignore, as adbd does
            if packet.command == A_WRTE:
                stream._on_write(packet.data)
            elif packet.command == A_OKAY:
                stream._on_okay()
            elif packet.command == A_CLSE:
                self._on_host_close(stream)

    def _on_host_close(self, stream: Stream) -> None:
        """The host's ``CLSE(host_id, dev_id)``: answer with our own CLSE once, then forget the stream.

        The adb server does not wait for the reply, but other clients (``adb-shell``) do. The stream is
        marked closed first, so the service's own close (when its thread ends) sends nothing more.
        """
        if stream._on_close():
            self.forget(stream.local_id)
            with contextlib.suppress(OSError):
                self.send(A_CLSE, stream.local_id, stream.remote_id)

    def _on_connect(self, packet: Packet) -> None:
        # A (re)connect resets the transport: every open stream dies.
        with self._streams_lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream._on_close()
        self.version = min(packet.arg0, A_VERSION)
        self.max_payload = max(4096, min(packet.arg1, MAX_PAYLOAD))
        self.connected = True
        self.send(A_CNXN, self.version, self.max_payload, self.banner)

    def _on_open(self, packet: Packet) -> None:
        service = packet.data.rstrip(b"\0").decode("utf-8", "replace")
        remote_id = packet.arg0
        handler = self.resolve(service)
        if handler is None:
            self.send(A_CLSE, 0, remote_id)
            return
        with self._streams_lock:
            local_id = self._next_id
            self._next_id += 1
            stream = Stream(self, local_id, remote_id, service)
            self._streams[local_id] = stream
        self.send(A_OKAY, local_id, remote_id)
        threading.Thread(
            target=_serve, args=(handler, stream), name=f"adb-svc-{local_id}-{service[:24]}", daemon=True
        ).start()


def _serve(handler: ServiceHandler, stream: Stream) -> None:
    try:
        handler(stream)
    except (StreamClosedError, EOFError, OSError) as exc:
        log.debug("service %r ended: %s", stream.service, exc)
    except Exception:  # a bug in a service must not take the device down; log it for the developer
        log.exception("service %r crashed", stream.service)
    finally:
        stream.close()


class TransportServer:
    """A TCP listener that accepts host connections and speaks the device side of the ADB transport."""

    def __init__(
        self,
        banner: bytes,
        resolve: ServiceResolver,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        emulator_port: bool = False,
    ):
        """``emulator_port``: a port in 5555-5585 is wanted (presenting as an Android Studio emulator)."""
        if port in ADB_EMULATOR_PORTS and not emulator_port:
            raise UsageError(
                f"port {port} is in 5555-5585, where the adb server auto-registers emulators; "
                "choose a port outside that range (or 0 for a free one)"
            )
        self.banner = banner
        self.resolve = resolve
        self.host = host
        self._listener = _listen(host, port)
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"adb-listen-{self.port}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, drop every connection and wait briefly for the reader threads."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            connection.close()
        for connection in connections:
            connection.join(timeout=2.0)
        self._thread.join(timeout=2.0)

    @property
    def connection_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._connections if c.connected)

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, peer = self._listener.accept()
            except OSError:
                break
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            connection = Connection(sock, self.banner, self.resolve, name=f"{peer[0]}:{peer[1]}")
            with self._lock:
                self._connections = [c for c in self._connections if c._thread.is_alive()]
                self._connections.append(connection)
            connection.start()


def _listen(host: str, port: int) -> socket.socket:
    """Bind ``host:port``; with port 0 retry until the kernel's pick is outside 5555-5585."""
    for _ in range(50):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another port") from None
        if port == 0 and sock.getsockname()[1] in ADB_EMULATOR_PORTS:
            sock.close()
            continue
        sock.listen(16)
        return sock
    raise UsageError(f"could not find a free port on {host} outside 5555-5585")
