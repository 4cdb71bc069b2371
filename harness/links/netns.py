"""Network namespaces, a veth pair and ``tc`` qdiscs: the kernel plumbing of a shaped link.

Two namespaces are created per link, both named after this process so that parallel runs never
collide and crashed runs can be cleaned up (:func:`remove_stale_namespaces`)::

    jdnn-<pid>-<tag>-dev    the device side: 10.77.0.1/30 on veth jd<tag>d
    jdnn-<pid>-<tag>-cloud  the cloud side:  10.77.0.2/30 on veth jd<tag>c

The private addresses exist only inside these two namespaces (each namespace has its own routing
table, so every run can use the same /30), and nothing else is routed: traffic goes from one end of
the veth to the other and nowhere else. The host's own interfaces are never touched.

Every command is run with an argument list (no shell). The device side is entered per *thread* with
``setns(2)`` (:func:`enter_namespace`): Linux lets one thread of a process join another network
namespace, so the runner's HTTP client lives on the device side while its adb connections stay on the
host's loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.links import radio
from models.errors import LinkError

__all__ = [
    "CLOUD_ADDR",
    "DEVICE_ADDR",
    "NETNS_DIR",
    "VethPair",
    "add_delay_and_rate",
    "add_rate",
    "change_delay",
    "change_rate",
    "create_veth_pair",
    "delete_namespace",
    "enter_namespace",
    "has_net_admin",
    "namespace_pids",
    "netem_available",
    "remove_stale_namespaces",
    "run_ip",
    "tbf_burst_bytes",
]

DEVICE_ADDR = "10.77.0.1"  # device end of the veth, only inside the device namespace
CLOUD_ADDR = "10.77.0.2"  # cloud end of the veth, only inside the cloud namespace
NETNS_DIR = Path("/var/run/netns")  # where `ip netns add` puts the namespace handles
_CLONE_NEWNET = 0x40000000
_CAP_NET_ADMIN = 12
_NAME_RE = re.compile(r"^jdnn-(\d+)-([0-9a-f]+)-(dev|cloud)$")


def has_net_admin() -> bool:
    """True when this process may create namespaces and qdiscs (root or CAP_NET_ADMIN) and has ip/tc."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return False
    if os.geteuid() == 0:
        return True
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    return False


def run_ip(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one ``ip``/``tc`` command (argument list); raise :class:`LinkError` with its stderr."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LinkError(f"`{' '.join(argv)}` could not run: {exc}") from None
    if check and done.returncode != 0:
        raise LinkError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


class VethPair:
    """The names of one link's namespaces and veth ends (nothing is created by the constructor)."""

    def __init__(self, tag: str, pid: int | None = None):
        pid = os.getpid() if pid is None else pid
        self.tag = tag  # short hex, unique per link within this process
        self.device_ns = f"jdnn-{pid}-{tag}-dev"
        self.cloud_ns = f"jdnn-{pid}-{tag}-cloud"
        self.device_if = f"jd{tag}d"[:15]  # IFNAMSIZ - 1
        self.cloud_if = f"jd{tag}c"[:15]


def create_veth_pair(pair: VethPair) -> None:
    """Create both namespaces and the veth between them, addressed and up. Undo with delete_namespace."""
    run_ip(["ip", "netns", "add", pair.device_ns])
    run_ip(["ip", "netns", "add", pair.cloud_ns])
    veth = ["type", "veth", "peer", "name", pair.cloud_if, "netns", pair.cloud_ns]
    run_ip(["ip", "link", "add", pair.device_if, "netns", pair.device_ns, *veth])
    for ns, ifname, addr in (
        (pair.device_ns, pair.device_if, DEVICE_ADDR),
        (pair.cloud_ns, pair.cloud_if, CLOUD_ADDR),
    ):
        run_ip(["ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", ifname])
        run_ip(["ip", "-n", ns, "link", "set", ifname, "up"])
        run_ip(["ip", "-n", ns, "link", "set", "lo", "up"])


def delete_namespace(name: str) -> None:
    """Delete a namespace (its veth end goes with it); a missing namespace is not an error."""
    if (NETNS_DIR / name).exists():
        run_ip(["ip", "netns", "del", name], check=False)


def tbf_burst_bytes(rate_mbps: float) -> int:
    """The token bucket's burst (bytes on the wire) at ``rate_mbps``: at least 2 full frames, else ~2 ms.

    After an idle moment this many bytes leave at line rate, not at ``rate_mbps`` (the planner's link
    model takes them off each transfer's serialisation: ``LinkSpec.up_burst_bytes``).
    """
    return max(3200, int(radio.bytes_per_s(rate_mbps) * 0.002))


def _tbf_args(rate_mbps: float) -> list[str]:
    # burst: tbf_burst_bytes; limit: ~1 s of data so TCP never sees drops
    bytes_per_s = radio.bytes_per_s(rate_mbps)
    burst = tbf_burst_bytes(rate_mbps)
    limit = max(256_000, int(bytes_per_s * 1.0))
    return ["tbf", "rate", f"{rate_mbps * 1000:.0f}kbit", "burst", str(burst), "limit", str(limit)]


def add_rate(ns: str, ifname: str, rate_mbps: float) -> None:
    """Rate-limit the egress of ``ifname`` in ``ns`` with a token bucket (tbf)."""
    run_ip(["tc", "-n", ns, "qdisc", "add", "dev", ifname, "root", "handle", "1:", *_tbf_args(rate_mbps)])


def add_delay_and_rate(ns: str, ifname: str, delay_ms: float, rate_mbps: float) -> None:
    """netem delay at the root and tbf rate as its child (the netem wiki's recipe) on ``ifname``'s egress."""
    netem = ["netem", "delay", f"{delay_ms * 1000:.0f}us", "limit", "100000"]
    run_ip(["tc", "-n", ns, "qdisc", "add", "dev", ifname, "root", "handle", "1:", *netem])
    run_ip(
        [
            "tc",
            "-n",
            ns,
            "qdisc",
            "add",
            "dev",
            ifname,
            "parent",
            "1:1",
            "handle",
            "10:",
            *_tbf_args(rate_mbps),
        ]
    )


def change_rate(ns: str, ifname: str, rate_mbps: float, *, parent: str | None = None) -> None:
    """Change a running tbf's rate in place (``tc qdisc change``: traffic keeps flowing, queue kept).

    ``parent`` None: the root tbf of :func:`add_rate`; ``"1:1"``: the netem child of
    :func:`add_delay_and_rate`.
    """
    where = ["root", "handle", "1:"] if parent is None else ["parent", parent, "handle", "10:"]
    run_ip(["tc", "-n", ns, "qdisc", "change", "dev", ifname, *where, *_tbf_args(rate_mbps)])


def change_delay(ns: str, ifname: str, delay_ms: float) -> None:
    """Change the root netem's delay in place (kernels with netem only)."""
    netem = ["netem", "delay", f"{delay_ms * 1000:.0f}us", "limit", "100000"]
    run_ip(["tc", "-n", ns, "qdisc", "change", "dev", ifname, "root", "handle", "1:", *netem])


def netem_available(pair: VethPair) -> bool:
    """Whether the kernel has the netem qdisc (many minimal kernels ship tbf but not netem)."""
    probe = run_ip(
        ["tc", "-n", pair.device_ns, "qdisc", "add", "dev", pair.device_if, "root", "netem", "delay", "1ms"],
        check=False,
    )
    if probe.returncode != 0:
        return False
    run_ip(["tc", "-n", pair.device_ns, "qdisc", "del", "dev", pair.device_if, "root"], check=False)
    return True


def enter_namespace(name: str) -> None:
    """Move the *calling thread* into network namespace ``name`` (setns(2)); other threads stay put.

    Sockets created by this thread afterwards live in that namespace. Call it only from a thread
    dedicated to the namespace (an executor's initializer), never from the main thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise LinkError(f"cannot enter network namespace {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(name: str) -> list[int]:
    """Processes running inside a namespace (``ip netns pids``)."""
    done = run_ip(["ip", "netns", "pids", name], check=False)
    return [int(tok) for tok in done.stdout.split() if tok.isdigit()]


def remove_stale_namespaces() -> list[str]:
    """Delete ``jdnn-<pid>-…`` namespaces whose creating process is gone (a crashed run); return them.

    The servers that crashed run left inside them (it started them; nothing else runs there) are
    terminated first, by pid, so that no orphan keeps a deleted namespace alive.
    """
    if not NETNS_DIR.is_dir():
        return []
    removed = []
    for entry in sorted(NETNS_DIR.iterdir()):
        match = _NAME_RE.match(entry.name)
        if match and not _alive(int(match.group(1))):
            for pid in namespace_pids(entry.name):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(LinkError):
                delete_namespace(entry.name)
                removed.append(entry.name)
    return removed
