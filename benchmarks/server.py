"""Benchmark the cloud half: MobileNetV2 (fp32, int8), in-process vs HTTP on loopback, in one run.

For each quantization it exports (or reuses) the bundle and starts, as subprocesses of ``jointdnn serve``
(one uvicorn worker, ``--pool-size`` chains, 1 LiteRT thread each): the server as it is (``server``), the
same with dynamic batching (``batched``) and, with ``--baseline-src DIR`` (a checkout of an older
commit), the older server (``before``). Then, in interleaved rounds (so load from other processes on the
machine hits every side alike), it measures:

- the tail ``[k, n)`` from a middle cut at concurrency 1, 4 and 16: in-process (``--pool-size``
  SegmentChains, each owned by one executor thread, C caller threads; at concurrency 1 the caller runs
  the chain itself) against each server driven by a wrk-style load generator (pre-built request bytes
  on keep-alive sockets, a few µs of Python per request);
- the whole model from segment 0 at concurrency 1 (a 602 KB float32 ``.npy`` body; the int8 server
  quantizes it, and so does the in-process side);
- the last (tiny) segment alone at concurrency 16, where nearly all of a server's CPU is the request
  path itself (HTTP, parsing, the hand-over to a chain and back);
- each server's CPU per request (user + system of its process over the measured requests) and how much
  of it is outside compute: minus the in-process side's CPU per request (this process's CPU over its
  own requests, measured in the same round), so time spent waiting for a core on a loaded machine does
  not count as compute.

It prints p50 latency (ms) and throughput (inferences/s), the p50 overhead of HTTP over in-process, the
throughput ratios (server ÷ in-process, batched ÷ server), and the wire bytes over raw tensor bytes.
Targets (issue 17): at concurrency 16 server ÷ in-process >= 0.9; batched >= 1.3x server; p50 overhead
at concurrency 1 <= 1.0 ms, whole-model request included. With ``--ray`` (needs the ``ray`` extra) it
also deploys the same app on Ray Serve (a local Ray with 2 CPUs) with 1 and then 2 replicas and
measures them the same way, including the Ray-over-uvicorn p50 overhead at concurrency 1.

    python benchmarks/server.py [--requests 200] [--pool-size 2] [--quants fp32 int8] [--bundles DIR]
                                [--baseline-src DIR] [--ray]
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
from functools import partial
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow the `server`
# package: drop that folder (the project is installed, so its packages are found anyway).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from models.benchmark import LoopSettings, run_loop  # noqa: E402
from models.bundle import MANIFEST_NAME  # noqa: E402
from models.runtime import SegmentChain  # noqa: E402
from server import wire  # noqa: E402
from server.client import CloudClient, parse_server_timing  # noqa: E402
from server.ray_serve import APP_NAME  # noqa: E402

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
        self.compute_ms: list[float] = []  # Server-Timing compute of each request

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
        parts = parse_server_timing(timing.split(b":", 1)[1].decode())
        self.compute_ms.append(parts["compute"])
        return rest[:length], sum(parts.values())

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


def _batch_per_item(bundle: Path, x: np.ndarray, k: int, sizes: tuple[int, ...] = (2, 4, 8, 16),
                    runs: int = 15) -> dict[int, float]:  # fmt: skip
    """Compute per item of segments k.. at batch B over batch 1 (one chain, one thread, medians).

    The most that dynamic batching can gain on this CPU: a batch saves only the per-item compute that
    XNNPACK's kernels save on a bigger batch.
    """
    chain = SegmentChain(bundle, num_threads=1)
    settings = LoopSettings(runs=runs, warmup_runs=1, warmup_min_secs=0.0)  # one warm-up after the re-plan
    per_item_ms: dict[int, float] = {}
    for batch in (1, *sizes):
        for runner in chain.runners[k:]:
            runner.resize_batch(batch)
        xb = np.concatenate([x] * batch)
        per_item_ms[batch] = run_loop(partial(chain.run, xb, k), settings).stats(settings).median_ms / batch
    return {b: per_item_ms[b] / per_item_ms[1] for b in sizes}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_up(base: str, process: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(1200):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not come up")


class _Server:
    """``jointdnn serve`` in a subprocess (from ``src`` when given: an older checkout, for "before")."""

    def __init__(self, label: str, bundle: Path, pool_size: int, *, batching: bool = False,
                 src: Path | None = None):  # fmt: skip
        self.label, self.port = label, _free_port()
        env = {key: v for key, v in os.environ.items() if not key.startswith("JOINTDNN_")}
        if src is not None:
            env["PYTHONPATH"] = str(src)
        cmd = [sys.executable, "-m", "harness.cli", "serve", "--bundle", str(bundle), "--port", str(self.port),
               "--pool-size", str(pool_size), "--threads", "1", "--log-level", "warning", "--no-access-log"]  # fmt: skip
        if batching:
            cmd.append("--batching")
        self.process = subprocess.Popen(cmd, env=env, cwd=src)
        self.base = f"http://127.0.0.1:{self.port}"
        self.pid = self.process.pid

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class _Side:
    """One side of the comparison and what was measured on it, per case."""

    def __init__(self, label: str, run: Callable[[np.ndarray, int, int, int], tuple[list[float], float]],
                 pid: int | None = None):  # fmt: skip
        self.label, self.run, self.pid = label, run, pid
        self.probe: _RawHttp | None = None  # the load generator of the last run, if over HTTP
        self.results: dict[str, _Result] = {}
        self.cpu_s: dict[str, float] = {}
        self.client_cpu_s: dict[str, float] = {}  # this process's CPU: the load generator's
        self.compute_ms: dict[str, list[float]] = {}  # Server-Timing compute (wall, ms)
        self.requests: dict[str, int] = {}

    def measure(self, case: str, x: np.ndarray, k: int, conc: int, n: int) -> None:
        result = self.results.setdefault(case, _Result())
        s0 = _cpu_s(self.pid) if self.pid else time.process_time()  # in-process: this process's CPU
        c0 = time.process_time()
        result.add(*self.run(x, k, conc, n))
        used = (_cpu_s(self.pid) if self.pid else time.process_time()) - s0
        self.cpu_s[case] = self.cpu_s.get(case, 0.0) + used
        self.client_cpu_s[case] = self.client_cpu_s.get(case, 0.0) + time.process_time() - c0
        self.requests[case] = self.requests.get(case, 0) + n + max(3, conc)  # measured + warm-up
        if self.probe is not None:
            self.compute_ms.setdefault(case, []).extend(self.probe.compute_ms)
            self.probe.compute_ms.clear()

    def cpu_ms_per_request(self, case: str) -> float:
        """CPU per request (ms): of the server process, or of this process for the in-process side."""
        return self.cpu_s[case] / self.requests[case] * 1e3

    def client_cpu_ms_per_request(self, case: str) -> float:
        """The load generator's CPU per request (ms; the in-process side's own CPU for that side)."""
        return self.client_cpu_s[case] / self.requests[case] * 1e3


class _HttpSide(_Side):
    """A side whose requests go over HTTP: one load generator per segment it is asked to start from."""

    def __init__(self, label: str, port: int, name: str, pid: int | None):
        super().__init__(label, self._run, pid)
        self.port, self.name = port, name
        self.probes: dict[int, _RawHttp] = {}

    def _run(self, x: np.ndarray, k: int, conc: int, n: int) -> tuple[list[float], float]:
        if k not in self.probes:
            self.probes[k] = _RawHttp(self.port, self.name, x, k)
        self.probe = self.probes[k]
        return self.probe.batch(x, k, conc, n)

    def close(self) -> None:
        for probe in self.probes.values():
            probe.close()


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


def _ray_sides(bundle: Path, pool_size: int, name: str) -> tuple[int, Callable[[int], None]]:
    """Start a local Ray (2 CPUs) with Serve on a free port; returns (its port, deploy(replicas))."""
    import ray
    from ray import serve

    from server.ray_serve import build_deployment
    from server.settings import Settings

    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error")
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    def deploy(replicas: int) -> None:
        settings = Settings(bundle_dir=bundle, pool_size=pool_size, interpreter_threads=1)
        serve.run(build_deployment(settings, replicas=replicas), name=APP_NAME, route_prefix="/")
        _wait_up(f"http://127.0.0.1:{port}")

    return port, deploy


def bench(root: Path, quant: str, pool_size: int, n: int, baseline_src: Path | None, with_ray: bool,
          rounds: int = 4) -> list[str]:  # fmt: skip
    bundle = _bundle(root, quant)
    reference = SegmentChain(bundle, num_threads=1)
    total = len(reference)
    k = total // 2  # middle cut: run segments k..n-1 on the server
    x0 = np.random.default_rng(0).random(tuple(reference.manifest.input.shape), dtype=np.float32)
    x = reference.run(reference.prepare_input(x0), 0, k).output  # the activation a phone would send
    name = bundle.name
    servers = [_Server("server", bundle, pool_size), _Server("batched", bundle, pool_size, batching=True)]
    if baseline_src is not None:
        servers.append(_Server("before", bundle, pool_size, src=baseline_src))
    out = []
    try:
        for server in servers:
            _wait_up(server.base, server.process)
        base = servers[0].base
        with CloudClient(base) as check:
            result = check.infer(name, x, from_segment=k)
            np.testing.assert_array_equal(result.output, reference.run(x, k).output)  # same answer
            zstd_bytes = check.infer(name, x, from_segment=k, encoding="zstd").request_bytes
        with CloudClient(servers[1].base) as check:  # batching changes nothing in the answer
            np.testing.assert_array_equal(check.infer(name, x, from_segment=k).output, result.output)
        raw = x.nbytes
        head = _request_head_bytes(base, name, k, wire.encode_npy(x))
        out.append(f"{name}: {total} segments, tail = segments {k}..{total - 1} on {x.dtype}{list(x.shape)} "
                   f"({raw} B raw), pool {pool_size} chains x 1 thread; load average {os.getloadavg()[0]:.1f} "
                   f"on {os.cpu_count()} cores")  # fmt: skip
        out.append(f"  wire: body {result.request_bytes} B = {result.request_bytes / raw:.4f}x raw; "
                   f"with HTTP request line+headers {result.request_bytes + head} B = "
                   f"{(result.request_bytes + head) / raw:.4f}x; zstd body {zstd_bytes / raw:.3f}x")  # fmt: skip
        local = _InProcess(bundle, pool_size)
        sides = [_Side("in-process", local.batch)]
        for server in servers:
            sides.append(_HttpSide(server.label, server.port, name, server.pid))
        whole_in = reference.prepare_input(x0)  # in-process: the int8 chain quantizes the float input too
        cases: list[tuple[str, np.ndarray, np.ndarray, int, int]] = [
            (f"tail c={conc}", x, x, k, conc) for conc in CONCURRENCY
        ]
        cases.append(("whole c=1", x0, whole_in, 0, 1))
        x_last = reference.run(x, k, total - 1).output  # input of the last (tiny) segment: ~all of the
        cases.append(("last c=16", x_last, x_last, total - 1, 16))  # server's CPU is the request path
        for case, body_x, local_x, start, conc in cases:
            for _ in range(rounds):  # interleave, so load from other processes hits all alike
                for side in sides:
                    side.measure(
                        case, local_x if side.label == "in-process" else body_x, start, conc, n // rounds
                    )
        out.append("  case       | side        p50 ms   p99 ms    inf/s | p50 +ms vs in-proc | thr ÷ in-proc | "
                   "CPU ms/req | outside compute | compute p50 (Server-Timing) | load gen CPU ms/req")  # fmt: skip
        for case, *_rest in cases:
            ip50, ip99, ithr = sides[0].results[case].stats()
            icpu = sides[0].cpu_ms_per_request(case)
            out.append(
                f"  {case:10s} | in-process {ip50:7.2f} {ip99:8.2f} {ithr:8.1f} |{'':20s}|{'':15s}| {icpu:10.2f} |"
            )
            for side in sides[1:]:
                p50, p99, thr = side.results[case].stats()
                cpu = side.cpu_ms_per_request(case)
                out.append(f"  {case:10s} | {side.label:10s} {p50:7.2f} {p99:8.2f} {thr:8.1f} | {p50 - ip50:+18.2f} | "
                           f"{thr / ithr:13.2f} | {cpu:10.2f} | {cpu - icpu:+15.2f} | "
                           f"{np.median(side.compute_ms[case]):8.2f} | "
                           f"{side.client_cpu_ms_per_request(case):8.2f}")  # fmt: skip
        by_label = {side.label: side for side in sides}
        thr16 = {label: side.results["tail c=16"].stats()[2] for label, side in by_label.items()}
        out.append(f"  c=16: server ÷ in-process {thr16['server'] / thr16['in-process']:.2f} (target >= 0.9); "
                   f"batched ÷ server {thr16['batched'] / thr16['server']:.2f} (target >= 1.3)")  # fmt: skip
        per_item = _batch_per_item(bundle, x, k)
        out.append("  batching's ceiling, in-process: tail compute per item at batch B ÷ batch 1: "
                   + ", ".join(f"B={b} {r:.2f}" for b, r in per_item.items())
                   + f" -> at most {1 / min(per_item.values()):.2f}x the unbatched throughput")  # fmt: skip
        print("\n".join(out), flush=True)
        if (
            with_ray
        ):  # after the uvicorn cases: a Ray that fails to start on a loaded machine costs only its part
            ray_port, ray_deploy = _ray_sides(bundle, pool_size, name)
            out += _bench_ray(ray_deploy, ray_port, name, x, k, n, rounds, sides[0], by_label["server"])
        local.executor.shutdown()
        for side in sides[1:]:
            assert isinstance(side, _HttpSide)
            side.close()
    finally:
        for server in servers:
            server.close()
        if with_ray:
            import ray
            from ray import serve

            serve.shutdown()
            ray.shutdown()
    return out


def _bench_ray(deploy: Callable[[int], None], port: int, name: str, x: np.ndarray, k: int, n: int, rounds: int,
               local: _Side, uvicorn: _Side) -> list[str]:  # fmt: skip
    """Ray Serve with 1 and 2 replicas against uvicorn and in-process, in interleaved rounds."""
    out = ["  Ray Serve (local Ray, 2 CPUs), tail; in-process and uvicorn measured again in the same rounds:"]
    for replicas in (1, 2):
        deploy(replicas)
        ray_side = _HttpSide(f"ray x{replicas}", port, name, None)
        for conc in (1, 16):
            case = f"ray{replicas} c={conc}"
            for _ in range(rounds):
                for side in (local, uvicorn, ray_side):
                    side.measure(case, x, k, conc, n // rounds)
            ip50, _ip99, ithr = local.results[case].stats()
            up50, _up99, uthr = uvicorn.results[case].stats()
            rp50, rp99, rthr = ray_side.results[case].stats()
            out.append(f"  {replicas} replica(s) c={conc:2d}: Ray p50 {rp50:6.2f} ms p99 {rp99:6.2f} {rthr:7.1f} inf/s | "
                       f"uvicorn p50 {up50:6.2f} {uthr:7.1f} inf/s | in-process p50 {ip50:6.2f} {ithr:7.1f} inf/s | "
                       f"Ray - uvicorn p50 {rp50 - up50:+6.2f} ms")  # fmt: skip
        ray_side.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="measured requests per case and side")
    parser.add_argument("--pool-size", type=int, default=2, help="interpreter chains (server and in-process)")
    parser.add_argument("--quants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--bundles", type=Path, default=None, help="where bundles are (default: a temp dir)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="checkout of an older commit: also measure its server ('before')")  # fmt: skip
    parser.add_argument("--ray", action="store_true", help="also measure Ray Serve with 1 and 2 replicas")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.bundles or Path(tmp)
        lines = []
        for quant in args.quants:
            lines += bench(root, quant, args.pool_size, args.requests, args.baseline_src, args.ray)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
