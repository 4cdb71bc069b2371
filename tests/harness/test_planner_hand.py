"""A 3-segment chain over 4G, computed by hand and checked to the number.

Link 4G (device_profiles/links/4g.yaml): up 5.85 Mbit/s, down 13.76 Mbit/s, RTT 50 ms,
P_up = 438.39 * 5.85 + 1288.04 = 3852.6215 mW, P_down = 51.97 * 13.76 + 1288.04 = 2003.1472 mW.
Phone waiting power 300 mW. Segments (mobile ms / mobile mJ / cloud ms / out bytes):
  0: 30 / 45 / 3 / 200,000     1: 800 / 1200 / 8 / 20,000     2: 10 / 15 / 1 / 4,000;  input 150,528 B.
Upload of B bytes: B*8 / 5.85e6 s; download: B*8 / 13.76e6 s.
  input up   150528 B: 205.850256 ms   x 3852.6215 mW = 793.063124 mJ
  seg0 out up 200000 B: 273.504274 ms   x 3852.6215 mW = 1053.708444 mJ
  seg1 out down 20000 B: 11.627907 ms   x 2003.1472 mW = 23.292409 mJ
  result down 4000 B:   2.325581 ms     x 2003.1472 mW = 4.658482 mJ
CCC latency = 3+8+1 + (205.850256+50) + (2.325581+50) = 320.175838 ms
    energy  = 793.063124 + 4.658482 + 300 mW * (12 ms cloud + 2 * 50 ms RTT) / 1000 = 831.321606 mJ
"""

from __future__ import annotations

import pytest

from harness.planner import Constraints, Objective, PlanningProblem, SegmentCosts, baselines, evaluate, plan
from harness.specs import load_link
from models.errors import InfeasibleError


@pytest.fixture(scope="module")
def problem() -> PlanningProblem:
    segments = SegmentCosts(
        mobile_ms=[30, 800, 10],
        mobile_mj=[45, 1200, 15],
        cloud_ms=[3, 8, 1],
        out_bytes=[200_000, 20_000, 4_000],
        input_bytes=150_528,
    )
    return PlanningProblem(segments=segments, link=load_link("4g"), waiting_mw=300.0)


# (latency ms, mobile energy mJ, cloud ms) of all 8 schedules, by hand (see the module docstring).
HAND = {
    "MMM": (840.0, 1260.0, 0),
    "MMC": (960.676009, 1385.329326, 1),
    "MCM": (433.132180, 1169.400854, 8),
    "MCC": (414.829855, 1136.066926, 9),
    "CMM": (1235.129326, 2271.887217, 3),
    "CMC": (1355.805335, 2397.216543, 4),
    "CCM": (338.478163, 864.655533, 11),
    "CCC": (320.175838, 831.321605, 12),
}


@pytest.mark.parametrize("label", sorted(HAND))
def test_every_schedule_matches_the_hand_computation(problem: PlanningProblem, label: str) -> None:
    latency, energy, cloud = HAND[label]
    b = evaluate(problem, ["cloud" if c == "C" else "mobile" for c in label])
    assert b.latency_ms == pytest.approx(latency, abs=1e-5)
    assert b.mobile_energy_mj == pytest.approx(energy, abs=1e-5)
    assert b.cloud_ms == pytest.approx(cloud, abs=1e-12)


def test_cloud_only_breakdown_to_the_number(problem: PlanningProblem) -> None:
    b = evaluate(problem, [1, 1, 1])
    assert b.latency_compute_ms == pytest.approx(12.0)
    assert b.latency_transfer_ms == pytest.approx(205.850256 + 50 + 2.325581 + 50, abs=1e-5)
    assert b.mobile_compute_mj == 0.0
    assert b.mobile_transfer_mj == pytest.approx(793.063124 + 4.658482, abs=1e-5)
    assert b.mobile_waiting_mj == pytest.approx(0.3 * (12 + 100), abs=1e-9)  # W x ms = mJ
    assert b.cloud_transfer_ms == pytest.approx(205.850256 + 2.325581, abs=1e-5)
    assert (b.up_bytes, b.down_bytes, b.transfers) == (150_528, 4_000, 2)


def test_unconstrained_optima_and_baselines(problem: PlanningProblem) -> None:
    for kind in ("latency", "energy"):
        best = plan(problem, Objective(kind))  # type: ignore[arg-type]
        assert best.label == "CCC" and best.solver == "shortest_path" and best.binding == []
    assert plan(problem, Objective("latency")).latency_ms == pytest.approx(320.175838, abs=1e-5)
    base = baselines(problem, Objective("latency"))
    assert base["best_single_cut"].label == "CCC"
    assert base["mobile_only"].latency_ms == 840.0


def test_cloud_budget_forces_a_two_cut_schedule(problem: PlanningProblem) -> None:
    # cloud <= 10 ms rules out CCC (12) and CCM (11); the fastest left is MCC (9 ms of cloud).
    best = plan(problem, Objective("latency"), Constraints(cloud_budget_ms=10))
    assert best.label == "MCC" and best.solver == "pareto"
    assert best.latency_ms == pytest.approx(414.829855, abs=1e-5)
    assert best.binding == ["cloud_budget_ms"] and best.slack["cloud_budget_ms"] == pytest.approx(1.0)
    assert best.cuts == [1, 3]  # up before segment 1, the result comes down after segment 2 (boundary 3)


def test_deadline_below_the_best_latency_is_infeasible(problem: PlanningProblem) -> None:
    with pytest.raises(InfeasibleError, match="deadline_ms = 300 ms cannot be met") as info:
        plan(problem, Objective("energy"), Constraints(deadline_ms=300))
    assert info.value.constraint == "deadline_ms"
    assert info.value.best_achievable == pytest.approx(320.175838, abs=1e-5)


def test_jointly_infeasible_budgets_name_one_and_its_best_value(problem: PlanningProblem) -> None:
    # Energy <= 900 mJ needs CCM or CCC (11-12 ms of cloud); cloud <= 10 ms allows only MCC and slower.
    with pytest.raises(InfeasibleError) as info:
        plan(problem, Objective("latency"), Constraints(energy_budget_mj=900, cloud_budget_ms=10))
    assert info.value.constraint == "energy_budget_mj"
    assert info.value.best_achievable == pytest.approx(1136.066926, abs=1e-5)  # MCC, best under cloud <= 10
