"""Services a host can OPEN on the emulated device: ``shell`` (v1 and shell_v2), ``exec`` and ``sync``.

Service names, as adbd parses them:

* ``shell:CMD`` -- legacy shell: raw bytes both ways, stdout and stderr merged, no exit status (the
  stream just closes; adbutils appends ``; echo X4EXIT:$?`` to learn it).
* ``shell,v2[,raw|,pty][,TERM=..]:CMD`` -- the shell protocol: every message is ``<id:u8><len:u32 LE>
  <data>`` with ids 0 stdin, 1 stdout, 2 stderr, 3 exit (one byte: the status), 4 close-stdin,
  5 window-size change. Stderr stays separate and the exit status is reported.
* ``exec:CMD`` -- raw, like legacy shell (``adb exec-out``).
* ``sync:`` -- file transfer (:mod:`harness.emulator.sync_service`).
* ``tcp:PORT`` / ``tcp:HOST:PORT`` -- a TCP connection made by the device (``adb forward tcp:X tcp:Y``).
  The emulated device shares the host's network, so ``tcp:Y`` reaches a server listening on the host's
  127.0.0.1:Y. A refused connection refuses the stream (the host sees it close at once).

An empty command starts an interactive shell that reads command lines from stdin.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from harness.emulator.shell import Shell
from harness.emulator.sync_service import serve_sync
from harness.emulator.system import AndroidSystem
from harness.emulator.transport import ServiceHandler, Stream

__all__ = ["ShellOptions", "make_resolver", "parse_shell_service", "parse_tcp_service"]

ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW_SIZE = range(6)
_V2_HEADER = struct.Struct("<BI")
_OUT_CHUNK = 64 * 1024  # bytes of program output per stream write (interleaves stdout and stderr fairly)


@dataclass(frozen=True)
class ShellOptions:
    """Parsed ``shell[,args]:command`` service name."""

    command: str
    v2: bool  # shell protocol framing (separate stderr, exit status)
    pty: bool  # a terminal: prompt, echo, CR/LF translation, stderr merged


def parse_shell_service(service: str) -> ShellOptions | None:
    """``shell,v2,raw:ls`` -> ShellOptions("ls", v2=True, pty=False); None if not a shell service."""
    if service.startswith("exec:"):
        return ShellOptions(service[len("exec:") :], v2=False, pty=False)
    if not service.startswith("shell"):
        return None
    head, sep, command = service.partition(":")
    if not sep or head.split(",")[0] != "shell":
        return None
    args = head.split(",")[1:]
    v2 = "v2" in args
    pty = "pty" in args or (not command and "raw" not in args)
    return ShellOptions(command, v2=v2, pty=pty)


class _RawOut:
    """stdout/stderr of a legacy shell: bytes straight into the stream (merged).

    A write returns once the host has acknowledged all but the last packet of it (the stream's flow
    control), so a program producing output faster than the host reads it blocks: nothing piles up.
    After the stream closed, writes raise :class:`StreamClosedError` (a BrokenPipeError).
    """

    def __init__(self, stream: Stream, lock: threading.Lock, system: AndroidSystem):
        self.stream = stream
        self.lock = lock
        self.system = system

    def write(self, data: bytes) -> int:
        self.system.note_output_write(len(data))
        view = memoryview(data)
        for start in range(0, len(view), _OUT_CHUNK):
            with self.lock:
                self.stream.write(bytes(view[start : start + _OUT_CHUNK]))
        return len(data)


class _V2Out(_RawOut):
    """One shell-protocol channel (stdout or stderr): each piece framed as ``<channel><length><data>``."""

    def __init__(self, stream: Stream, channel: int, lock: threading.Lock, system: AndroidSystem):
        super().__init__(stream, lock, system)
        self.channel = channel

    def write(self, data: bytes) -> int:
        self.system.note_output_write(len(data))
        view = memoryview(data)
        for start in range(0, len(view), _OUT_CHUNK):
            piece = view[start : start + _OUT_CHUNK]
            with self.lock:
                self.stream.write(_V2_HEADER.pack(self.channel, len(piece)) + bytes(piece))
        return len(data)


class _PtyOut:
    """Output through a pseudo-terminal: ``\n`` becomes ``\r\n`` (the tty's ONLCR)."""

    def __init__(self, inner: _RawOut):
        self.inner = inner

    def write(self, data: bytes) -> int:
        self.inner.write(bytes(data).replace(b"\n", b"\r\n"))
        return len(data)


class _StdinReader:
    """stdin of a shell: the raw stream (legacy) or the shell protocol's stdin messages (v2).

    With ``echo`` (a pty session) it also plays the terminal's line discipline: typed characters are
    echoed, Enter (``\r``) ends a line, Backspace erases, Ctrl-C drops the line, Ctrl-D on an empty
    line is end of input.
    """

    def __init__(self, stream: Stream, *, v2: bool, echo: _PtyOut | None = None):
        self.stream = stream
        self.v2 = v2
        self.echo = echo
        self.pending = bytearray()
        self.line = bytearray()  # the line being typed (pty only)
        self.eof = False
        self.lock = threading.Lock()

    def _fill(self) -> None:
        if not self.v2:
            data = self.stream.read()
            if data:
                self._received(data)
            else:
                self.eof = True
            return
        try:
            channel, length = _V2_HEADER.unpack(self.stream.read_exact(_V2_HEADER.size))
            data = self.stream.read_exact(length) if length else b""
        except EOFError:
            self.eof = True
            return
        if channel == ID_STDIN:
            self._received(data)
        elif channel == ID_CLOSE_STDIN:
            self.eof = True

    def _received(self, data: bytes) -> None:
        if self.echo is None:
            self.pending += data
            return
        for byte in data:
            char = bytes([byte])
            if char in (b"\r", b"\n"):
                self.pending += self.line + b"\n"
                self.line.clear()
                self.echo.write(b"\n")
            elif char in (b"\x7f", b"\x08"):
                if self.line:
                    self.line.pop()
                    self.echo.write(b"\x08 \x08")
            elif char == b"\x03":
                self.line.clear()
                self.pending += b"\n"
                self.echo.write(b"^C\n")
            elif char == b"\x04" and not self.line:
                self.eof = True
            else:
                self.line += char
                self.echo.write(char)

    def read(self, size: int = -1) -> bytes:
        with self.lock:
            while not self.eof and (size < 0 or not self.pending):
                self._fill()
            if size < 0:
                size = len(self.pending)
            data = bytes(self.pending[:size])
            del self.pending[:size]
            return data

    def readline(self) -> bytes:
        with self.lock:
            while not self.eof and b"\n" not in self.pending:
                self._fill()
            end = self.pending.find(b"\n") + 1 or len(self.pending)
            data = bytes(self.pending[:end])
            del self.pending[:end]
            return data


def _serve_shell(stream: Stream, system: AndroidSystem, options: ShellOptions) -> None:
    lock = threading.Lock()
    base_out: _RawOut = (
        _V2Out(stream, ID_STDOUT, lock, system) if options.v2 else _RawOut(stream, lock, system)
    )
    base_err: _RawOut = _V2Out(stream, ID_STDERR, lock, system) if options.v2 else base_out
    stdout: _RawOut | _PtyOut = base_out
    stderr: _RawOut | _PtyOut = base_err
    echo = None
    if options.pty:  # a terminal merges stderr into its one output and translates newlines
        stdout = stderr = echo = _PtyOut(base_out)
    stdin = _StdinReader(stream, v2=options.v2, echo=echo)
    shell = Shell(system, cwd="/", cancel=stream.closed_event)
    if options.command:
        status = shell.run(options.command, stdin, stdout, stderr)
    else:
        status = _interactive(shell, stdin, stdout, stderr, prompt=options.pty)
    if options.v2 and not stream.closed:
        with lock:
            stream.write(_V2_HEADER.pack(ID_EXIT, 1) + bytes([status & 0xFF]))


def _interactive(
    shell: Shell,
    stdin: _StdinReader,
    stdout: _RawOut | _PtyOut,
    stderr: _RawOut | _PtyOut,
    *,
    prompt: bool,
) -> int:
    """``adb shell`` without a command: run stdin line by line (with a prompt on a pty) until ``exit``."""
    name = shell.system.spec.name
    while not shell.cancel.is_set() and not shell.exited:
        if prompt:
            stdout.write(f"{name}:{shell.cwd} $ ".encode())
        line = stdin.readline()
        if not line:
            break
        shell.run(line.decode("utf-8", "replace"), stdin, stdout, stderr)
    return shell.status


def make_resolver(system: AndroidSystem) -> Callable[[str], ServiceHandler | None]:
    """The transport's service table for one device."""

    def resolve(service: str) -> ServiceHandler | None:
        if service == "sync:":
            return lambda stream: serve_sync(stream, system)
        options = parse_shell_service(service)
        if options is not None:
            return lambda stream: _serve_shell(stream, system, options)
        if service.startswith("tcp:"):
            return _connect_tcp(service)
        return None  # reboot:, tcpip:, framebuffer:, localabstract: ... are refused (the host sees "closed")

    return resolve


_TCP_CONNECT_TIMEOUT_S = 3.0


def parse_tcp_service(service: str) -> tuple[str, int] | None:
    """``tcp:8080`` -> ("127.0.0.1", 8080); ``tcp:10.0.0.2:80`` -> ("10.0.0.2", 80); None if malformed."""
    host, _, port = service[len("tcp:") :].rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host or "127.0.0.1", int(port)


def _connect_tcp(service: str) -> ServiceHandler | None:
    """Connect now (so a refused port refuses the OPEN, as adbd does) and relay bytes both ways."""
    target = parse_tcp_service(service)
    if target is None:
        return None
    try:
        sock = socket.create_connection(target, timeout=_TCP_CONNECT_TIMEOUT_S)
    except OSError:
        return None
    sock.settimeout(None)
    return lambda stream: _serve_tcp(stream, sock)


def _serve_tcp(stream: Stream, sock: socket.socket) -> None:
    """Relay between the adb stream and the TCP connection until either side closes."""

    def to_host() -> None:
        try:
            while data := sock.recv(64 * 1024):
                stream.write(data)  # flow control: waits for the host's OKAY
        except OSError:
            pass
        finally:
            stream.close()  # the server closed its end: close the stream (wakes the reader below)

    relay = threading.Thread(target=to_host, name=f"adb-tcp-{stream.local_id}", daemon=True)
    relay.start()
    try:
        while data := stream.read():
            sock.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        relay.join(timeout=5.0)
