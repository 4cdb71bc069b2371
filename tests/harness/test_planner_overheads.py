"""Fixed costs per invocation: the 4G hand case of test_planner_hand.py plus per-stage overheads, by hand.

Same chain and link as tests/harness/test_planner_hand.py (its HAND numbers are the starting point);
on top, an invocation starting at segment i pays (mobile stage: ms / mJ; cloud request: ms):
  mobile: 2 / 3, 4 / 6, 6 / 9        cloud: 0.5, 1.5, 2.5   (waiting power 300 mW: 0.3 mJ per ms)
  MMM: one mobile stage at 0                  -> +2 ms,               +3 mJ,                cloud +0
  CCC: one request at 0                       -> +0.5 ms,             +0.15 mJ,             cloud +0.5
  MCM: mobile at 0, request at 1, mobile at 2 -> +2 +1.5 +6 = 9.5 ms, +3 +0.45 +9 = 12.45,  cloud +1.5
  CMC: request at 0, mobile at 1, request at 2 -> +0.5 +4 +2.5 = 7 ms, +0.15 +6 +0.75 = 6.9, cloud +3
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from harness.planner import Constraints, Objective, PlanningProblem, SegmentCosts, evaluate, plan
from harness.planner.costs import costs_from_frames
from harness.specs import LinkSpec, load_device, load_link
from models.profile_rows import ProfileRow


@pytest.fixture(scope="module")
def problem() -> PlanningProblem:
    segments = SegmentCosts(
        mobile_ms=[30, 800, 10],
        mobile_mj=[45, 1200, 15],
        cloud_ms=[3, 8, 1],
        out_bytes=[200_000, 20_000, 4_000],
        input_bytes=150_528,
        mobile_overhead_ms=[2, 4, 6],
        mobile_overhead_mj=[3, 6, 9],
        cloud_overhead_ms=[0.5, 1.5, 2.5],
    )
    return PlanningProblem(segments=segments, link=load_link("4g"), waiting_mw=300.0)


# (latency ms, mobile energy mJ, cloud ms): test_planner_hand.HAND + the overheads (module docstring)
HAND = {
    "MMM": (840.0 + 2, 1260.0 + 3, 0),
    "CCC": (320.175838 + 0.5, 831.321605 + 0.15, 12 + 0.5),
    "MCM": (433.132180 + 9.5, 1169.400854 + 12.45, 8 + 1.5),
    "CMC": (1355.805335 + 7, 2397.216543 + 6.9, 4 + 3),
}


@pytest.mark.parametrize("label", sorted(HAND))
def test_each_invocation_pays_its_overhead_once(problem: PlanningProblem, label: str) -> None:
    latency, energy, cloud = HAND[label]
    b = evaluate(problem, ["cloud" if c == "C" else "mobile" for c in label])
    assert b.latency_ms == pytest.approx(latency, abs=1e-5)
    assert b.mobile_energy_mj == pytest.approx(energy, abs=1e-5)
    assert b.cloud_ms == pytest.approx(cloud, abs=1e-12)


def test_every_solver_prices_the_overheads_alike(problem: PlanningProblem) -> None:
    for objective in (Objective("latency"), Objective("energy")):
        loose = Constraints(deadline_ms=1e9)  # a budget that never binds: the integer program runs
        chosen = {
            "shortest_path": plan(problem, objective),
            "milp": plan(problem, objective, loose, solver="milp"),
            "brute_force": plan(problem, objective, solver="brute_force"),
        }
        assert chosen["milp"].solver == "milp"
        values = {s: p.objective_value for s, p in chosen.items()}
        assert max(values.values()) == pytest.approx(min(values.values()), rel=1e-9), values
        assert chosen["brute_force"].objective_value == pytest.approx(
            chosen["brute_force"].predicted.objective(objective)
        )


def test_large_request_overheads_change_the_plan(problem: PlanningProblem) -> None:
    """CCC wins on latency (320.7 ms); a 600 ms request overhead makes mobile-only (842 ms) win."""
    assert plan(problem, Objective("latency")).label == "CCC"
    seg = problem.segments
    costly = SegmentCosts(
        mobile_ms=seg.mobile_ms, mobile_mj=seg.mobile_mj, cloud_ms=seg.cloud_ms, out_bytes=seg.out_bytes,
        input_bytes=seg.input_bytes, cloud_overhead_ms=[600.0, 600.0, 600.0],
    )  # fmt: skip
    assert plan(PlanningProblem(segments=costly, link=problem.link), Objective("latency")).label == "MMM"


def _row(segment: int, hot_ms: float, chain_ms: float, overhead_ms: float) -> dict[str, object]:
    row = ProfileRow(
        model="toy", quant="int8", segment=segment, first_layer=f"l{segment}", last_layer=f"l{segment}",
        out_bytes=1000, latency_ms_median=hot_ms, latency_ms_p10=hot_ms, latency_ms_p90=hot_ms, runs=5,
        energy_mj=math.nan, power_mw=math.nan, threads=1, device="d", runtime="r", timestamp="t",
        in_bytes=1000, chain_ms_median=chain_ms, overhead_ms=overhead_ms, overhead_method="by hand",
    )  # fmt: skip
    return asdict(row)


def test_profiles_feed_chain_times_and_overheads() -> None:
    """Chain-context times replace hot-loop ones where measured; overheads land per start segment."""
    mobile = pd.DataFrame([_row(0, 1.0, 1.5, 0.0), _row(1, 2.0, math.nan, math.nan)])
    cloud = pd.DataFrame([_row(0, 0.1, 0.3, 0.2), _row(1, 0.2, 0.5, 0.2)])
    device = load_device("generic-phone")
    costs = costs_from_frames(mobile, cloud, device)
    assert np.allclose(costs.mobile_ms, [1.5, 2.0])  # segment 1 has no chain time: hot loop
    assert np.allclose(costs.cloud_ms, [0.3, 0.5])
    assert np.allclose(costs.cloud_overhead_ms, [0.2, 0.2])
    assert np.allclose(costs.mobile_overhead_ms, [0.0, 0.0])  # NaN (not measured) counts as 0
    assert costs.mobile_mj[0] == pytest.approx(device.compute_energy_mj(1.5, 1))


def test_a_shapers_burst_passes_unserialised() -> None:
    """8 Mbit/s = 1 byte/us both ways, no RTT: 4000 B up, 500 B down, 1 ms on the cloud.

    No burst: 4 + 0.5 + 1 = 5.5 ms. A 1000-byte burst each way: (4000 - 1000) B = 3 ms up, the
    500-byte result fits in the burst (0 ms): 3 + 0 + 1 = 4 ms.
    """
    link = LinkSpec(name="t", up_mbps=8, down_mbps=8, rtt_ms=0, alpha_up_mw_per_mbps=0,
                    alpha_down_mw_per_mbps=0, beta_mw=0)  # fmt: skip
    segments = SegmentCosts(mobile_ms=[10], mobile_mj=[1], cloud_ms=[1], out_bytes=[500], input_bytes=4000)
    plain = evaluate(PlanningProblem(segments=segments, link=link), [1])
    burst = link.model_copy(update={"up_burst_bytes": 1000.0, "down_burst_bytes": 1000.0})
    bursty = evaluate(PlanningProblem(segments=segments, link=burst), [1])
    assert plain.latency_ms == pytest.approx(5.5)
    assert bursty.latency_ms == pytest.approx(4.0)
    assert bursty.up_bytes == plain.up_bytes == 4000  # the bytes still cross
