"""A TCP delay line: forwards connections and holds every chunk for a fixed time in each direction.

Used as the round-trip emulation when the kernel has no ``netem`` qdisc (tbf still limits the rate on
the veth). It runs inside the cloud namespace, listens on the veth address and forwards to a server on
that namespace's loopback, adding ``delay_ms`` (= RTT/2) to the bytes flowing each way, so a request
and its response together see one RTT, like a netem delay of RTT/2 on each veth end. Unlike netem it
does not stretch TCP slow start over the RTT; that matches the planner's model (RTT + bytes/bandwidth).

The delay can change while traffic flows (link traces): a line ``delay <ms>`` on stdin sets the one-way
delay of every chunk that arrives afterwards (chunks already held keep their release time, so bytes
never overtake each other).

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


class _Delay:
    """The current one-way delay (s), shared by every pump; changed by ``delay <ms>`` lines on stdin."""

    seconds = 0.0


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: type[_Delay]) -> None:
    """Copy reader -> writer, releasing each chunk the current delay after it arrived (never earlier
    than the chunk before it)."""
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
    last_due = 0.0
    try:
        while True:
            data = await reader.read(_CHUNK)
            due = max(time.monotonic() + delay.seconds, last_due)
            last_due = due
            queue.put_nowait((due, data))
            if not data:
                break
        await releaser
    except (ConnectionError, OSError):
        releaser.cancel()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _follow_stdin() -> None:
    """Apply ``delay <ms>`` lines from stdin (other lines are ignored); stop at EOF."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        words = line.split()
        if len(words) == 2 and words[0] == "delay":
            with contextlib.suppress(ValueError):
                _Delay.seconds = max(0.0, float(words[1])) / 1e3


async def serve(
    listen: str, target: str, ports: list[int], delay_ms: float, *, control: bool = False
) -> None:
    """Relay ``listen:port`` -> ``target:port`` for every port, forever (``control``: follow stdin)."""
    _Delay.seconds = delay_ms / 1e3

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
                _pump(client_r, server_w, _Delay), _pump(server_r, client_w, _Delay), return_exceptions=True
            )
            for w in (client_w, server_w):
                w.close()

        return handle

    servers = [await asyncio.start_server(handler(port), listen, port) for port in ports]
    print("ready", flush=True)
    if control:
        asyncio.get_running_loop().create_task(_follow_stdin())
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--target", default="127.0.0.1")
    parser.add_argument("--ports", required=True, help="comma-separated TCP ports")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay (ms)")
    parser.add_argument("--control", action="store_true", help="read `delay <ms>` lines from stdin")
    args = parser.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",") if p]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.target, ports, args.delay_ms, control=args.control))
    return 0


if __name__ == "__main__":
    sys.exit(main())
