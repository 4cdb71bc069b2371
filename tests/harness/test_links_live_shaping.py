"""Live shaping: a link's rates and round trip change while it is up (tc change / relay / pacing)."""

from __future__ import annotations

import time

import pytest

from harness.links import ShapedLink, measure_link, netns
from harness.links.trace import LinkConditions, TraceReplay, parse_csv_trace
from harness.specs import load_link

privileged = pytest.mark.skipif(
    not netns.has_net_admin(), reason="needs root or CAP_NET_ADMIN and the ip/tc tools (tc shaping)"
)


@pytest.mark.privileged
@privileged
def test_tc_link_follows_new_conditions_while_up() -> None:
    with ShapedLink(load_link("4g"), shaping="tc") as shaped:
        before = measure_link(shaped, seconds=0.3, pings=3)
        shaped.set_conditions(1.5, 3.0, 160.0)
        after = measure_link(shaped, seconds=0.3, pings=3)
        assert shaped.link.up_mbps == 1.5 and shaped.link.rtt_ms == 160.0
    assert before.up_mbps == pytest.approx(5.85, rel=0.2)
    assert after.up_mbps == pytest.approx(1.5, rel=0.2)
    assert after.down_mbps == pytest.approx(3.0, rel=0.2)
    assert after.rtt_ms == pytest.approx(160.0, rel=0.15, abs=5.0)


def test_pacing_link_follows_new_conditions() -> None:
    with ShapedLink(load_link("wifi"), shaping="pacing") as shaped:
        shaped.set_conditions(1.0, 2.0, 100.0)
        slept = shaped.pace(125_000, 0, elapsed_ms=0.0)  # 1 Mbit up at 1 Mbps + RTT
    assert slept == pytest.approx(1100.0, rel=1e-6)


def test_trace_replay_applies_every_row_on_time() -> None:
    trace = parse_csv_trace("t_s,up_mbps,down_mbps,rtt_ms\n0,5,10,50\n0.15,1,2,100\n0.3,3,6,20\n", "t")
    seen: list[tuple[float, LinkConditions]] = []
    started = time.monotonic()  # no later than the replay's own start
    with TraceReplay(trace, lambda c: seen.append((time.monotonic(), c))) as replay:
        time.sleep(0.6)
        assert replay.applied == 3
    assert [c.up_mbps for _, c in seen] == [5, 1, 3]
    assert seen[1][0] - started >= 0.15 and seen[2][0] - started >= 0.3  # none before its time


def test_trace_replay_hands_errors_to_the_caller() -> None:
    trace = parse_csv_trace("t_s,up_mbps,down_mbps,rtt_ms\n0,5,10,50\n0.05,1,2,100\n", "t")

    def apply(c: LinkConditions) -> None:
        if c.up_mbps == 1:
            raise RuntimeError("tc refused")

    with pytest.raises(RuntimeError, match="tc refused"), TraceReplay(trace, apply):
        time.sleep(0.3)
