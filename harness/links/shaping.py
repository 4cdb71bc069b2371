"""A wireless link between the device side and the cloud side, shaped for real when the process may.

:class:`ShapedLink` is a context manager that sets up one of three shapings, best first:

``tc-netem``
    Two network namespaces joined by a veth pair (:mod:`harness.links.netns`). On each veth end's
    egress: ``netem delay RTT/2`` with a ``tbf`` child limiting the rate — uplink rate on the device
    end, downlink rate on the cloud end, so the two directions are shaped separately.
``tc-tbf+relay``
    The same namespaces and tbf rates, for kernels without netem (e.g. minimal VM kernels): the round
    trip comes from a TCP delay line (:mod:`harness.links.relay`) in the cloud namespace that holds
    the bytes RTT/2 in each direction.
``pacing``
    Unprivileged fallback: cloud processes run on the host's loopback and the client sleeps after each
    exchange so that it lasts RTT + bytes/bandwidth (:meth:`ShapedLink.pace`).

Cloud-side processes (uvicorn, the probe) are started with :meth:`ShapedLink.spawn_cloud` inside the
cloud namespace; device-side network code runs through :meth:`ShapedLink.device_call` on a thread
that joined the device namespace, so HTTP between them crosses the shaped veth. Everything is torn
down on exit — processes (by pid), the relay, both namespaces and with them the veth and its qdiscs —
also when set-up fails half way.

Time-varying links (:mod:`harness.links.trace`): :meth:`ShapedLink.set_conditions` changes the shaping
while traffic flows — ``tc qdisc change`` of the tbf rates (and the netem delay), a ``delay <ms>`` line
to the relay, or new pacing targets — and :attr:`ShapedLink.link` follows.

Rates on the veth are set 4 % above the profile's Mbps: TCP/IP headers take ~4 % of a 1500-byte
frame, and profiles give throughput as applications see it (OpenSignal measures goodput).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from types import TracebackType
from typing import IO, Literal, TypeVar

from harness.links import netns
from harness.links.probe import make_server
from harness.specs import LinkSpec
from models.errors import LinkError

__all__ = ["HEADER_OVERHEAD", "ShapedLink", "ShapingMode", "ShapingRequest", "free_port"]

ShapingMode = Literal["tc-netem", "tc-tbf+relay", "pacing"]
ShapingRequest = Literal["auto", "tc", "pacing"]
T = TypeVar("T")

HEADER_OVERHEAD = 1.04  # veth rate / profile goodput (TCP/IP headers of 1500-byte frames)
SERVER_PORT = 8000  # inside the cloud namespace (private to it, so fixed ports never collide)
PROBE_PORT = 9000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ShapedLink:
    """One emulated wireless link for the lifetime of a ``with`` block (see the module docstring)."""

    def __init__(self, link: LinkSpec, *, shaping: ShapingRequest = "auto"):
        self.link = link
        self.requested: ShapingRequest = shaping
        self.mode: ShapingMode = "pacing"
        self.note = ""  # why a weaker shaping was chosen, for the report
        self.cloud_host = "127.0.0.1"  # where the device side connects
        self.cloud_bind_host = "127.0.0.1"  # where cloud-side servers listen
        self.server_port = 0
        self.probe_port = 0
        self._pair: netns.VethPair | None = None
        self._procs: list[subprocess.Popen[str]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._probe_server: object | None = None
        self._relay: subprocess.Popen[str] | None = None
        self._shaping_lock = threading.Lock()  # set_conditions may come from a trace-replay thread

    # -- set-up / tear-down -------------------------------------------------------------------------------

    def __enter__(self) -> ShapedLink:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def shaped_in_kernel(self) -> bool:
        return self.mode != "pacing"

    def _setup(self) -> None:
        if self.requested != "pacing":
            if netns.has_net_admin():
                try:
                    self._setup_tc()
                    return
                except LinkError as exc:
                    if self.requested == "tc":
                        raise
                    self.note = f"tc shaping failed ({exc}); fell back to client pacing"
                    self._teardown_tc()
            elif self.requested == "tc":
                raise LinkError(
                    "tc shaping needs root or CAP_NET_ADMIN and the `ip`/`tc` tools; "
                    "run as root or pass --shaping pacing"
                )
            else:
                self.note = "not privileged (root / CAP_NET_ADMIN needed for tc); client-side pacing"
        self._setup_pacing()

    def _setup_tc(self) -> None:
        netns.remove_stale_namespaces()
        pair = self._pair = netns.VethPair(secrets.token_hex(3))
        netns.create_veth_pair(pair)
        up_rate = self.link.up_mbps * HEADER_OVERHEAD
        down_rate = self.link.down_mbps * HEADER_OVERHEAD
        half_rtt_ms = self.link.rtt_ms / 2
        self.cloud_host = netns.CLOUD_ADDR
        self.server_port, self.probe_port = SERVER_PORT, PROBE_PORT
        if netns.netem_available(pair):
            self.mode = "tc-netem"
            netns.add_delay_and_rate(pair.device_ns, pair.device_if, half_rtt_ms, up_rate)
            netns.add_delay_and_rate(pair.cloud_ns, pair.cloud_if, half_rtt_ms, down_rate)
            self.cloud_bind_host = netns.CLOUD_ADDR
        else:
            self.mode = "tc-tbf+relay"
            netns.add_rate(pair.device_ns, pair.device_if, up_rate)
            netns.add_rate(pair.cloud_ns, pair.cloud_if, down_rate)
            self.cloud_bind_host = "127.0.0.1"
            ports = f"{SERVER_PORT},{PROBE_PORT}"
            relay = ["--listen", netns.CLOUD_ADDR, "--ports", ports, "--delay-ms", f"{half_rtt_ms}"]
            self._relay = self.spawn_cloud(
                [sys.executable, "-m", "harness.links.relay", *relay, "--control"],
                ready_line="ready",
                stdin_pipe=True,
            )
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"netns-{pair.device_ns}",
            initializer=netns.enter_namespace,
            initargs=(pair.device_ns,),
        )
        self.device_call(lambda: None)  # fail now, not mid-run, if the thread cannot join the namespace
        self.spawn_cloud(
            [
                sys.executable,
                "-m",
                "harness.links.probe",
                "--host",
                self.cloud_bind_host,
                "--port",
                str(PROBE_PORT),
            ],
            ready_line="ready",
        )

    def _setup_pacing(self) -> None:
        self.mode = "pacing"
        if self.requested == "pacing" and not self.note:
            self.note = "client-side pacing requested"
        self.cloud_host = self.cloud_bind_host = "127.0.0.1"
        self.server_port = free_port()
        server = make_server("127.0.0.1", 0)
        self.probe_port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, name="link-probe", daemon=True).start()
        self._probe_server = server
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-device-side")

    def _teardown_tc(self) -> None:
        if self._pair is not None:
            netns.delete_namespace(self._pair.device_ns)
            netns.delete_namespace(self._pair.cloud_ns)
            self._pair = None

    def close(self) -> None:
        """Stop every process this link started, the probe, the thread, and delete the namespaces."""
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()
        self._relay = None
        if self._probe_server is not None:
            server = self._probe_server
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
            self._probe_server = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._teardown_tc()

    # -- using the link ---------------------------------------------------------------------------------

    @property
    def namespaces(self) -> tuple[str, str] | None:
        """(device, cloud) namespace names, or None when pacing."""
        return (self._pair.device_ns, self._pair.cloud_ns) if self._pair else None

    def spawn_cloud(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        ready_line: str | None = None,
        timeout_s: float = 60.0,
        stdout_path: str | None = None,
        stdin_pipe: bool = False,
    ) -> subprocess.Popen[str]:
        """Start ``argv`` on the cloud side (inside the cloud namespace when shaping with tc).

        The process is stopped by :meth:`close`. With ``ready_line``, wait until it prints that line;
        with ``stdin_pipe``, its stdin is a pipe this process writes to (else /dev/null).
        """
        full = list(argv)
        if self._pair is not None:
            full = [
                "ip",
                "netns",
                "exec",
                self._pair.cloud_ns,
                *full,
            ]  # `ip netns exec` execs argv (same pid)
        merged_env = {**os.environ, **(env or {})}
        log: IO[str] | None = open(stdout_path, "a") if stdout_path else None  # noqa: SIM115
        stdout: int | IO[str] = subprocess.PIPE if ready_line else (log or subprocess.DEVNULL)
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=stdout,
                stderr=log or subprocess.DEVNULL,
                text=True,
                env=merged_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise LinkError(f"cannot start {argv[0]} on the cloud side: {exc}") from None
        finally:
            if log is not None:
                log.close()  # the child holds its own copy of the descriptor
        self._procs.append(proc)
        if ready_line:
            _wait_for_line(proc, ready_line, timeout_s, " ".join(argv[:4]))
        return proc

    def set_conditions(self, up_mbps: float, down_mbps: float, rtt_ms: float) -> None:
        """Change the link's rates and round trip now, while traffic flows (see the module docstring)."""
        with self._shaping_lock:
            self.link = self.link.model_copy(
                update={"up_mbps": up_mbps, "down_mbps": down_mbps, "rtt_ms": rtt_ms}
            )
            if self._pair is None:
                return  # pacing: pace() reads self.link
            pair = self._pair
            up_rate, down_rate = up_mbps * HEADER_OVERHEAD, down_mbps * HEADER_OVERHEAD
            if self.mode == "tc-netem":
                netns.change_rate(pair.device_ns, pair.device_if, up_rate, parent="1:1")
                netns.change_rate(pair.cloud_ns, pair.cloud_if, down_rate, parent="1:1")
                netns.change_delay(pair.device_ns, pair.device_if, rtt_ms / 2)
                netns.change_delay(pair.cloud_ns, pair.cloud_if, rtt_ms / 2)
                return
            netns.change_rate(pair.device_ns, pair.device_if, up_rate)
            netns.change_rate(pair.cloud_ns, pair.cloud_if, down_rate)
            relay = self._relay
            if relay is None or relay.stdin is None or relay.poll() is not None:
                raise LinkError("the delay relay is not running; cannot change the round trip")
            try:
                relay.stdin.write(f"delay {rtt_ms / 2:.3f}\n")
                relay.stdin.flush()
            except OSError as exc:
                raise LinkError(f"cannot reach the delay relay: {exc}") from None

    def device_call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run ``fn(*args, **kwargs)`` on the device side's network thread and return its result."""
        if self._executor is None:
            raise LinkError("the link is not set up; use it inside `with ShapedLink(...)`")
        try:
            return self._executor.submit(fn, *args, **kwargs).result()
        except BrokenThreadPool:
            raise LinkError("the device-side network thread could not join its namespace") from None

    def cloud_url(self, port: int | None = None) -> str:
        """Base URL of the server on the cloud side, as the device side reaches it."""
        return f"http://{self.cloud_host}:{port or self.server_port}"

    @property
    def burst_bytes(self) -> tuple[float, float]:
        """(up, down) payload bytes a transfer moves at line rate after an idle moment (tc's token bucket).

        Pacing sleeps for every byte, so it has none.
        """
        if self.mode == "pacing":
            return 0.0, 0.0
        up, down = (
            netns.tbf_burst_bytes(mbps * HEADER_OVERHEAD) for mbps in (self.link.up_mbps, self.link.down_mbps)
        )
        return up / HEADER_OVERHEAD, down / HEADER_OVERHEAD

    def pace(self, up_bytes: int, down_bytes: int, elapsed_ms: float) -> float:
        """In pacing mode, sleep so that an exchange of these sizes lasts RTT + bytes/bandwidth.

        ``elapsed_ms`` is how long the exchange took on the wire (server time excluded). Returns the
        ms slept (0 when the kernel shapes the link).
        """
        if self.mode != "pacing":
            return 0.0
        target_ms = self.link.rtt_ms + self.link.upload_ms(up_bytes) + self.link.download_ms(down_bytes)
        extra_ms = max(0.0, target_ms - elapsed_ms)
        if extra_ms > 0:
            time.sleep(extra_ms / 1e3)
        return extra_ms


def _wait_for_line(proc: subprocess.Popen[str], line: str, timeout_s: float, what: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            text = proc.stdout.readline()
            if text.strip() == line:
                return
            if not text and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    code = proc.poll()
    _stop(proc)
    raise LinkError(f"{what} did not start on the cloud side (exit code {code}) within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    """Terminate one process we started (by its pid), then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
