"""A TCP delay line: forwards connections and holds every chunk for a fixed time in each direction.

Used as the round-trip emulation when the kernel has no ``netem`` qdisc (tbf still limits the rate on
the veth). It runs inside the cloud namespace, listens on the veth address and forwards to a server on
that namespace's loopback, adding ``delay_ms`` (= RTT/2) to the bytes flowing each way, so a request
and its response together see one RTT, like a netem delay of RTT/2 on each veth end. Unlike netem it
does not stretch TCP slow start over the RTT; that matches the planner's model (RTT + bytes/bandwidth).

Run: ``python -m harness.links.relay --listen 10.77.0.2 --target 127.0.0.1 --ports 8000,9000
--delay-ms 25``. It prints ``ready`` on stdout once every port listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time

__all__ = ["main", "serve"]

_CHUNK = 1 << 16  # bytes read per recv


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy reader -> writer, releasing each chunk ``delay_s`` after it arrived."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    releaser = asyncio.create_task(release())
    try:
        while True:
            data = await reader.read(_CHUNK)
            queue.put_nowait((time.monotonic() + delay_s, data))
            if not data:
                break
        await releaser
    except (ConnectionError, OSError):
        releaser.cancel()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def serve(listen: str, target: str, ports: list[int], delay_ms: float) -> None:
    """Relay ``listen:port`` -> ``target:port`` for every port, forever."""
    delay_s = delay_ms / 1e3

    def handler(port: int):  # type: ignore[no-untyped-def]
        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            try:
                server_r, server_w = await asyncio.open_connection(target, port)
            except OSError:
                client_w.close()
                return
            _nodelay(client_w)
            _nodelay(server_w)
            await asyncio.gather(
                _pump(client_r, server_w, delay_s), _pump(server_r, client_w, delay_s), return_exceptions=True
            )
            for w in (client_w, server_w):
                w.close()

        return handle

    servers = [await asyncio.start_server(handler(port), listen, port) for port in ports]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--target", default="127.0.0.1")
    parser.add_argument("--ports", required=True, help="comma-separated TCP ports")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay (ms)")
    args = parser.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",") if p]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.target, ports, args.delay_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
