"""Traffic shaping: the kernel path (namespaces + veth + tc) when root, and the pacing fallback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.links import ShapedLink, measure_link, netns, radio
from harness.specs import load_link
from models.errors import LinkError

privileged = pytest.mark.skipif(
    not netns.has_net_admin(), reason="needs root or CAP_NET_ADMIN and the ip/tc tools (tc shaping)"
)


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout


@pytest.mark.privileged
@privileged
@pytest.mark.parametrize("name", ["3g", "wifi"])
def test_tc_shaping_sets_rate_and_rtt(name: str) -> None:
    link = load_link(name)
    with ShapedLink(link, shaping="tc") as shaped:
        assert shaped.mode in {"tc-netem", "tc-tbf+relay"}
        device_ns, cloud_ns = shaped.namespaces or ("", "")
        assert device_ns in _namespaces() and cloud_ns in _namespaces()
        qdiscs = subprocess.run(
            ["tc", "-n", device_ns, "qdisc", "show"], capture_output=True, text=True, check=True
        ).stdout
        assert "tbf" in qdiscs
        measured = measure_link(shaped)
    assert measured.up_mbps == pytest.approx(link.up_mbps, rel=0.15)
    assert measured.down_mbps == pytest.approx(link.down_mbps, rel=0.15)
    # a loaded 2-core machine adds a few ms of scheduling to each round trip
    assert measured.rtt_ms == pytest.approx(link.rtt_ms, rel=0.15, abs=4.0)
    # everything is torn down: no namespace of this link is left
    assert device_ns not in _namespaces() and cloud_ns not in _namespaces()


@pytest.mark.privileged
@privileged
def test_tc_link_is_torn_down_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), ShapedLink(load_link("4g"), shaping="tc") as shaped:
        names = shaped.namespaces
        raise RuntimeError("boom")
    assert names is not None and names[0] not in _namespaces()


@pytest.mark.privileged
@privileged
def test_device_side_thread_reaches_only_the_cloud_namespace() -> None:
    with ShapedLink(load_link("wifi"), shaping="tc") as shaped:
        # the device-side thread sees the veth address; the host's main thread does not
        route_file = Path("/proc/thread-self/net/route")
        routes = shaped.device_call(route_file.read_text)
        host_routes = route_file.read_text()
        veth = netns.VethPair(shaped.namespaces[0].split("-")[2]).device_if  # type: ignore[index]
        assert veth in routes
        assert veth not in host_routes


def test_pacing_respects_bandwidth_and_rtt() -> None:
    link = load_link("3g")
    with ShapedLink(link, shaping="pacing") as shaped:
        assert shaped.mode == "pacing" and shaped.namespaces is None
        measured = measure_link(shaped, seconds=0.2, pings=2)
        slept = shaped.pace(110_000, 0, 0.0)  # 110 kB at 1.1 Mbps = 800 ms + 100 ms RTT
    assert slept == pytest.approx(900.0, rel=1e-6)
    assert measured.up_mbps == pytest.approx(link.up_mbps, rel=0.05)
    assert measured.rtt_ms == pytest.approx(link.rtt_ms, rel=0.05)
    assert measured.shaping == "pacing"


def test_device_call_outside_with_block_is_a_clear_error() -> None:
    shaped = ShapedLink(load_link("wifi"), shaping="pacing")
    with pytest.raises(LinkError, match="inside `with ShapedLink"):
        shaped.device_call(lambda: None)


def test_stale_namespaces_of_dead_processes_are_removed() -> None:
    if not netns.has_net_admin():
        pytest.skip("needs root or CAP_NET_ADMIN to create a namespace")
    dead_pid = 2**22 + 12345  # above pid_max on Linux, so never alive
    pair = netns.VethPair("abcdef", pid=dead_pid)
    netns.run_ip(["ip", "netns", "add", pair.cloud_ns])
    orphan = subprocess.Popen(["ip", "netns", "exec", pair.cloud_ns, "sleep", "60"])  # a crashed run's server
    try:
        deadline = time.monotonic() + 10
        while not netns.namespace_pids(pair.cloud_ns) and time.monotonic() < deadline:
            time.sleep(0.05)
        removed = netns.remove_stale_namespaces()
        assert pair.cloud_ns in removed
        assert pair.cloud_ns not in _namespaces()
        assert orphan.wait(timeout=10) != 0  # terminated by remove_stale_namespaces
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_radio_formulas_agree_with_the_link_spec_and_each_other() -> None:
    link = load_link("4g")
    nbytes = np.array([0, 1_000, 150_528])
    assert radio.serial_ms(150_528, link.up_mbps) == pytest.approx(link.upload_ms(150_528))
    np.testing.assert_allclose(radio.serial_ms(nbytes, link.down_mbps), [link.download_ms(b) for b in nbytes])
    # over the serialisation time, alpha * Mbit + beta * t is the radio power times the time
    serial = radio.serial_ms(nbytes, link.up_mbps)
    np.testing.assert_allclose(
        radio.radio_energy_mj(nbytes, serial, link.alpha_up_mw_per_mbps, link.beta_mw),
        radio.radio_power_mw(link.up_mbps, link.alpha_up_mw_per_mbps, link.beta_mw) * serial / 1e3,
    )
    assert radio.throughput_mbps(150_528, link.upload_ms(150_528)) == pytest.approx(link.up_mbps)


def test_radio_imports_without_the_shaping_machinery() -> None:
    code = "import sys, harness.links.radio; print(sorted(m for m in sys.modules if m.startswith('harness')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['harness', 'harness.links', 'harness.links.radio']"
