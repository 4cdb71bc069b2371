"""Benchmark the cloud half: MobileNetV2 (fp32, int8) tail from a middle cut, in-process vs HTTP on loopback.

For each quantization it exports (or reuses) the bundle, starts ``jointdnn serve`` in a subprocess (one
uvicorn worker, ``--pool-size`` chains, 1 LiteRT thread each) and, at concurrency 1, 4 and 16, runs the
same tail ``[k, n)`` on the same middle-cut activation:

- in-process: ``--pool-size`` SegmentChains, each owned by one executor thread (the server's execution
  model without HTTP), C caller threads; latency = wait for a chain + run;
- HTTP: C threads of a wrk-style load generator (pre-built request bytes on keep-alive sockets, a few µs
  of Python per request), latency = round trip through uvicorn, FastAPI, the pool and back;
- CloudClient: the same through the harness's typed httpx client (~1 ms of client CPU per request,
  which on 2 cores competes with the server: shown for reference, not used for the targets).

It prints p50 / p99 latency (ms) and throughput (inferences/s), the p50 overhead of HTTP over in-process,
the throughput ratio, the server's own compute time (Server-Timing) and CPU per request, and bytes on
the wire over raw tensor bytes (body only, and with the HTTP request line and headers). Targets
(issue 4): p50 overhead <= 1.5 ms at concurrency 1; wire bytes <= 1.01x raw (uncompressed); throughput
at 16 >= 80% of in-process with the same threads. Both sides are measured in interleaved batches, so
load from other processes on the machine hits them alike; on a busy shared machine expect noise.

    python benchmarks/server.py [--requests 200] [--pool-size 2] [--quants fp32 int8] [--bundles DIR]
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow the `server`
# package: drop that folder (the project is installed, so its packages are found anyway).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from models.bundle import MANIFEST_NAME  # noqa: E402
from models.runtime import SegmentChain  # noqa: E402
from server import wire  # noqa: E402
from server.client import CloudClient, parse_server_timing  # noqa: E402

MODEL = "mobilenet_v2"
CONCURRENCY = (1, 4, 16)


def _bundle(root: Path, quant: str) -> Path:
    """``root/mobilenet_v2-<quant>``, exported by ``jointdnn export`` unless it already exists."""
    out = root / f"{MODEL}-{quant}"
    if not (out / MANIFEST_NAME).is_file():
        print(f"exporting {out} ...", flush=True)
        subprocess.run([sys.executable, "-m", "harness.cli", "export", MODEL, "-q", quant, "--out", str(out)],
                       check=True)  # fmt: skip
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Result:
    """Latencies (ms) and busy wall time (s) accumulated over interleaved batches."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.wall_s = 0.0
        self.server_ms: list[float] = []

    def add(self, latencies_ms: list[float], wall_s: float) -> None:
        self.latencies_ms += latencies_ms
        self.wall_s += wall_s

    def stats(self) -> tuple[float, float, float]:
        p50, p99 = np.percentile(self.latencies_ms, [50, 99])
        return float(p50), float(p99), len(self.latencies_ms) / self.wall_s


class _InProcess:
    """The server's execution model without HTTP: pool_size chains, each owned by one executor thread."""

    def __init__(self, bundle: Path, pool_size: int):
        self.chains = [SegmentChain(bundle, num_threads=1) for _ in range(pool_size)]
        spare: queue.SimpleQueue[SegmentChain] = queue.SimpleQueue()
        for chain in self.chains:
            spare.put(chain)
        self._local = threading.local()
        self.executor = ThreadPoolExecutor(
            pool_size, initializer=lambda: setattr(self._local, "chain", spare.get())
        )

    def _run(self, x: np.ndarray, k: int) -> np.ndarray:
        chain: SegmentChain = self._local.chain
        return chain.run(x, k).output

    def batch(self, x: np.ndarray, k: int, conc: int, n: int) -> tuple[list[float], float]:
        def one(_: int) -> float:
            t0 = time.perf_counter()
            if conc == 1:  # a single caller runs the chain itself: the best in-process latency
                self.chains[0].run(x, k)
            else:
                self.executor.submit(self._run, x, k).result()
            return (time.perf_counter() - t0) * 1e3

        return _timed(one, conc, n)


class _OverHttp:
    """C client threads, each with its own keep-alive CloudClient."""

    def __init__(self, base: str, name: str):
        self.base, self.name = base, name
        self._local = threading.local()
        self.clients: list[CloudClient] = []
        self.server_ms: list[float] = []

    def batch(self, x: np.ndarray, k: int, conc: int, n: int) -> tuple[list[float], float]:
        def one(_: int) -> float:
            client = getattr(self._local, "client", None)
            if client is None:
                client = self._local.client = CloudClient(self.base, timeout_s=120)
                self.clients.append(client)
            t0 = time.perf_counter()
            result = client.infer(self.name, x, from_segment=k)
            elapsed = (time.perf_counter() - t0) * 1e3
            self.server_ms.append(result.server_ms)
            return elapsed

        return _timed(one, conc, n)

    def close(self) -> None:
        for client in self.clients:
            client.close()


class _RawHttp:
    """A wrk-style load generator: pre-built request bytes on keep-alive sockets, one per thread.

    It costs a few µs of Python per request where httpx costs ~1 ms of CPU, so on a 2-core machine the
    load generator does not eat the cores the server is being measured on.
    """

    def __init__(self, port: int, name: str, x: np.ndarray, k: int):
        body = wire.encode_npy(x)
        head = (f"POST /v1/models/{name}/infer?from_segment={k} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: {wire.CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        self.request = head.encode() + body
        self.port = port
        self._local = threading.local()
        self.sockets: list[socket.socket] = []
        self.outside_ms: list[float] = []  # round trip minus the server's parse + queue + compute

    def _roundtrip(self) -> tuple[bytes, float]:
        """One request; the response body and the server's own time (Server-Timing sum, ms)."""
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._local.sock = socket.create_connection(("127.0.0.1", self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.buffer = b""
            self.sockets.append(sock)
        sock.sendall(self.request)
        data = self._local.buffer
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        self._local.buffer = rest[length:]
        timing = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"server-timing"))
        server_ms = sum(parse_server_timing(timing.split(b":", 1)[1].decode()).values())
        return rest[:length], server_ms

    def batch(self, x: np.ndarray, k: int, conc: int, n: int) -> tuple[list[float], float]:
        def one(_: int) -> float:
            t0 = time.perf_counter()
            _body, server_ms = self._roundtrip()
            elapsed = (time.perf_counter() - t0) * 1e3
            self.outside_ms.append(elapsed - server_ms)
            return elapsed

        return _timed(one, conc, n)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _timed(one: Callable[[int], float], conc: int, n: int) -> tuple[list[float], float]:
    """Run ``one`` n times from ``conc`` threads (after a warm-up); latencies and wall time."""
    with ThreadPoolExecutor(conc) as callers:
        list(callers.map(one, range(max(3, conc))))  # warm-up: threads, connections, first invokes
        t0 = time.perf_counter()
        latencies = list(callers.map(one, range(n)))
        return latencies, time.perf_counter() - t0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request_head_bytes(base: str, name: str, k: int, body: bytes) -> int:
    """Bytes of the HTTP/1.1 request line and headers the client sends with one inference."""
    client = CloudClient(base)
    request = client._http.build_request(  # the exact headers CloudClient.infer sends
        "POST", f"/v1/models/{name}/infer", params={"from_segment": k}, content=body,
        headers={"Content-Type": wire.CONTENT_TYPE},
    )  # fmt: skip
    client.close()
    target = request.url.raw_path.decode()
    lines = [f"POST {target} HTTP/1.1"] + [f"{key}: {value}" for key, value in request.headers.items()]
    return len("\r\n".join(lines).encode()) + 4


def bench(root: Path, quant: str, pool_size: int, n: int, rounds: int = 4) -> list[str]:
    bundle = _bundle(root, quant)
    reference = SegmentChain(bundle, num_threads=1)
    total = len(reference)
    k = total // 2  # middle cut: run segments k..n-1 on the server
    x0 = np.random.default_rng(0).random(tuple(reference.manifest.input.shape), dtype=np.float32)
    x = reference.run(reference.prepare_input(x0), 0, k).output  # the activation a phone would send
    name = bundle.name
    port = _free_port()
    env = {key: v for key, v in os.environ.items() if not key.startswith("JOINTDNN_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--bundle", str(bundle), "--port", str(port),
         "--pool-size", str(pool_size), "--threads", "1", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    out = []
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with CloudClient(base) as check:
            result = check.infer(name, x, from_segment=k)
            np.testing.assert_array_equal(result.output, reference.run(x, k).output)  # same answer
            zstd_bytes = check.infer(name, x, from_segment=k, encoding="zstd").request_bytes
        raw = x.nbytes
        head = _request_head_bytes(base, name, k, wire.encode_npy(x))
        out.append(f"{name}: {total} segments, server runs segments {k}..{total - 1} on {x.dtype}{list(x.shape)} "
                   f"({raw} B raw), pool {pool_size} chains x 1 thread")  # fmt: skip
        out.append(f"  wire: body {result.request_bytes} B = {result.request_bytes / raw:.4f}x raw; "
                   f"with HTTP request line+headers {result.request_bytes + head} B = "
                   f"{(result.request_bytes + head) / raw:.4f}x; zstd body {zstd_bytes / raw:.3f}x; "
                   f"response body {result.response_bytes} B for {result.output.nbytes} B raw")  # fmt: skip
        x_last = reference.run(x, k, total - 1).output  # input of the last (tiny) segment
        probe = _RawHttp(port, name, x_last, total - 1)
        lat, _wall = probe.batch(x_last, total - 1, 1, n)
        probe.close()
        out.append(f"  bare HTTP cost (last segment only, c=1): p50 round trip {np.median(lat):.2f} ms, "
                   f"p50 outside the server's parse+queue+compute {np.median(probe.outside_ms):.2f} ms")  # fmt: skip
        out.append("  conc | in-proc p50    p99   inf/s | HTTP p50    p99   inf/s | p50 +ms | thr ratio | "
                   "CloudClient p50  inf/s | server compute p50 | HTTP outside server p50 | server CPU ms/req")  # fmt: skip
        local = _InProcess(bundle, pool_size)
        remote = _OverHttp(base, name)
        raw_http = _RawHttp(port, name, x, k)
        for conc in CONCURRENCY:
            mine, theirs, typed = _Result(), _Result(), _Result()
            remote.server_ms.clear()
            raw_http.outside_ms.clear()
            server_cpu_s = 0.0
            for _ in range(rounds):  # interleave, so load from other processes hits all alike
                mine.add(*local.batch(x, k, conc, n // rounds))
                s0 = _cpu_s(server.pid)
                theirs.add(*raw_http.batch(x, k, conc, n // rounds))
                server_cpu_s += _cpu_s(server.pid) - s0
                typed.add(*remote.batch(x, k, conc, n // rounds))
            ip50, ip99, ithr = mine.stats()
            hp50, hp99, hthr = theirs.stats()
            tp50, _tp99, tthr = typed.stats()
            count = len(theirs.latencies_ms) + rounds * max(3, conc)  # measured + warm-up requests
            out.append(f"  {conc:4d} | {ip50:7.2f} {ip99:7.2f} {ithr:7.1f} | {hp50:8.2f} {hp99:7.2f} {hthr:7.1f} "
                       f"| {hp50 - ip50:+7.2f} | {hthr / ithr:8.2f}  | {tp50:15.2f} {tthr:6.1f} | "
                       f"{np.median(remote.server_ms):18.2f} | {np.median(raw_http.outside_ms):23.2f} | "
                       f"{server_cpu_s / count * 1e3:8.2f}")  # fmt: skip
            print(out[-1], flush=True)
        raw_http.close()
        remote.close()
        local.executor.shutdown()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="measured requests per concurrency level")
    parser.add_argument("--pool-size", type=int, default=2, help="interpreter chains (server and in-process)")
    parser.add_argument("--quants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--bundles", type=Path, default=None, help="where bundles are (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.bundles or Path(tmp)
        lines = []
        for quant in args.quants:
            lines += bench(root, quant, args.pool_size, args.requests)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
