"""The link probe: a tiny TCP sink/source on the cloud side that :mod:`harness.links.measure` times.

Protocol (one TCP connection, many requests): the client sends a 9-byte header ``op`` (1 byte) +
``n`` (8 bytes, big endian).

* ``U``: the client then sends ``n`` bytes; the server answers one byte once it has them all (upload).
* ``D``: the server answers ``n`` bytes (download).

``U`` with ``n = 0`` is a ping (one round trip). Run: ``python -m harness.links.probe --host H
--port P``; it prints ``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import sys

__all__ = ["ProbeHandler", "main", "make_server", "recv_exact"]

_HEADER = 9  # bytes: op + u64 length
_ZEROS = bytes(1 << 16)


def recv_exact(sock: socket.socket, n: int, *, keep: bool = False) -> bytes:
    """Receive exactly ``n`` bytes (returned only if ``keep``); raise ConnectionError on EOF."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = sock.recv(min(1 << 16, n - got))
        if not chunk:
            raise ConnectionError("probe peer closed the connection")
        got += len(chunk)
        if keep:
            parts.append(chunk)
    return b"".join(parts)


def send_zeros(sock: socket.socket, n: int) -> None:
    """Send ``n`` zero bytes in 64 KiB writes."""
    while n > 0:
        step = min(n, len(_ZEROS))
        sock.sendall(_ZEROS[:step])
        n -= step


class ProbeHandler(socketserver.BaseRequestHandler):
    """Serves ``U``/``D`` requests on one connection until the client closes it."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                header = recv_exact(sock, _HEADER, keep=True)
                op, n = header[:1], int.from_bytes(header[1:], "big")
                if op == b"U":
                    recv_exact(sock, n)
                    sock.sendall(b"k")
                elif op == b"D":
                    send_zeros(sock, n)
                else:
                    return
        except (ConnectionError, OSError):
            return


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def make_server(host: str, port: int) -> socketserver.ThreadingTCPServer:
    """A threaded probe server bound to ``host:port`` (port 0 picks one); call serve_forever()."""
    return _Server((host, port), ProbeHandler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="JointDNN link probe server")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with make_server(args.host, args.port) as server:
        print("ready", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
