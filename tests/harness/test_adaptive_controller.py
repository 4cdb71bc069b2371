"""The adaptive controller's parts without a network: estimators, plan cache, hysteresis, battery."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.adaptive import (
    AdaptiveController,
    ControllerSettings,
    LinkEstimator,
    Observation,
    QueueEstimator,
    harmonic_mean,
)
from harness.links import radio
from harness.links.trace import LinkConditions
from harness.planner import Constraints, Objective, PlanningProblem, SegmentCosts, evaluate, plan
from harness.specs import load_link


def _problem() -> PlanningProblem:
    """A phone-heavy chain with a big input and a small bottleneck halfway: the best split moves with
    the bandwidth (cloud-only on a fast link, a split, then mobile-only on a slow one)."""
    mobile_ms = np.array([30.0, 40, 35, 20, 25, 10])
    segments = SegmentCosts(
        mobile_ms=mobile_ms,
        mobile_mj=mobile_ms * 1.5,
        cloud_ms=mobile_ms / 10,
        out_bytes=np.array([400_000, 300_000, 20_000, 200_000, 50_000, 4_000]),
        input_bytes=150_000,
    )
    return PlanningProblem(segments=segments, link=load_link("4g"), waiting_mw=300.0)


# -- estimators ---------------------------------------------------------------------------------------


def _exchange_ms(up_bytes: float, down_bytes: float, truth: LinkConditions) -> float:
    return (
        truth.rtt_ms + radio.serial_ms(up_bytes, truth.up_mbps) + radio.serial_ms(down_bytes, truth.down_mbps)
    )


def test_link_estimator_recovers_the_rates_of_a_synthetic_transfer_log() -> None:
    truth = LinkConditions(4.0, 12.0, 60.0)
    est = LinkEstimator(LinkConditions(20.0, 50.0, 10.0), window=5)
    rng = np.random.default_rng(0)
    for i in range(40):
        est.add_ping(
            truth.rtt_ms + rng.uniform(0, 3), now_s=i
        )  # pings queue a little, never less than the RTT
        up, down = rng.integers(40_000, 300_000), rng.integers(40_000, 100_000)
        est.add_exchange(float(up), float(down), _exchange_ms(up, down, truth), now_s=i)
    got = est.estimate()
    assert got.rtt_ms == pytest.approx(60.0, abs=3.0)  # windowed minimum
    assert got.up_mbps == pytest.approx(4.0, rel=0.15)
    assert got.down_mbps == pytest.approx(12.0, rel=0.15)


def test_link_estimator_follows_a_rate_drop_within_its_window() -> None:
    est = LinkEstimator(LinkConditions(5.0, 10.0, 50.0), window=4)
    for i, mbps in enumerate([5.0] * 6 + [1.0] * 4):
        truth = LinkConditions(mbps, 10.0, 50.0)
        est.add_ping(50.0, now_s=i)
        est.add_exchange(200_000, 0, _exchange_ms(200_000, 0, truth), now_s=i * 0.1)
    assert est.estimate().up_mbps == pytest.approx(1.0, rel=0.05)


def test_harmonic_mean_is_robust_to_one_fast_outlier() -> None:
    assert harmonic_mean([2.0, 2.0, 2.0, 2.0, 100.0]) < 2.6  # the arithmetic mean would be 21.6
    assert harmonic_mean([3.0]) == 3.0


def test_tiny_transfers_give_no_throughput_sample() -> None:
    est = LinkEstimator(LinkConditions(5.0, 10.0, 50.0))
    est.add_exchange(10_000, 100, 400.0, now_s=0)  # slow, but mostly latency: not a bandwidth sample
    assert est.estimate().up_mbps == 5.0 and est.last_sample_s == -math.inf


def test_old_samples_leave_the_window_and_probes_refresh_it() -> None:
    est = LinkEstimator(LinkConditions(5.0, 10.0, 50.0), window=5, window_s=2.0)
    for i in range(3):
        est.add_ping(50.0, now_s=i * 0.1)
        est.add_exchange(100_000, 0, _exchange_ms(100_000, 0, LinkConditions(1.0, 10.0, 50.0)), now_s=i * 0.1)
    assert est.estimate().up_mbps == pytest.approx(1.0, rel=0.05)
    # mobile-only for a while; one probe 5 s later at 8 Mbps replaces the stale samples at once
    est.add_probe(40_000, 50.0 + 40.0, 40_000, 50.0 + 20.0, now_s=5.0, rtt_ms=50.0)
    assert est.estimate().up_mbps == pytest.approx(8.0, rel=0.01)
    assert est.estimate().down_mbps == pytest.approx(16.0, rel=0.01)


def test_queue_estimator_reads_the_load_report() -> None:
    q = QueueEstimator()
    report = {
        "models": {"m": {"in_flight": 2, "queued": 5, "pool_size": 2, "recent_compute_ms_median": 30.0}}
    }
    assert q.update(report, "m") == pytest.approx((7 - 2 + 1) * 30.0 / 2)
    assert q.update(report, "m", ours_in_flight=True) == pytest.approx((6 - 2 + 1) * 30.0 / 2)
    idle = {"models": {"m": {"in_flight": 1, "queued": 0, "pool_size": 2, "recent_compute_ms_median": 30.0}}}
    assert q.update(idle, "m") == 0.0


# -- controller -------------------------------------------------------------------------------------------


def _best_label(problem: PlanningProblem, mbps: float, objective: str = "latency") -> str:
    controller = AdaptiveController(problem, ControllerSettings(objective=objective))
    return controller.decide(Observation(mbps, mbps * 2, 50.0)).label


def _crossover(problem: PlanningProblem) -> float:
    """An uplink rate where the latency-optimal schedule changes (bisection on a log scale)."""
    lo, hi = 0.2, 50.0
    low_label = _best_label(problem, lo)
    assert low_label != _best_label(problem, hi)
    for _ in range(30):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if _best_label(problem, mid) == low_label else (lo, mid)
    return (lo * hi) ** 0.5


def test_no_flapping_on_a_trace_oscillating_around_a_crossover() -> None:
    problem = _problem()
    cross = _crossover(problem)
    rates = [cross * (1.06 if i % 2 else 1 / 1.06) for i in range(60)]  # +-6 % around it, every request
    eager = AdaptiveController(problem, ControllerSettings(switch_margin=0.0, min_dwell=0, grid_step=0.01))
    calm = AdaptiveController(problem)
    eager_labels = [eager.decide(Observation(r, 2 * r, 50.0)).label for r in rates]
    calm_labels = [calm.decide(Observation(r, 2 * r, 50.0)).label for r in rates]
    assert eager.switches >= 50  # the test's trace really crosses the crossover every request
    assert len(set(eager_labels)) == 2
    # at most one switch (the grid may put the two sides in cells a margin apart), never back and forth
    assert calm.switches <= 1
    assert sum(a != b for a, b in itertools.pairwise(calm_labels)) == calm.switches
    # a real change of conditions still switches
    high = _best_label(problem, cross * 8)
    target = cross / 8 if calm_labels[-1] == high else cross * 8
    before = calm.switches
    far = [calm.decide(Observation(target, 2 * target, 50.0)) for _ in range(3)]
    assert calm.switches == before + 1 and far[-1].label != calm_labels[-1]


def test_plan_cache_answers_repeat_conditions_without_planning() -> None:
    controller = AdaptiveController(_problem())
    first = controller.decide(Observation(5.0, 10.0, 50.0))
    again = controller.decide(Observation(5.05, 10.1, 50.5))  # same grid cell
    assert not first.cache_hit and again.cache_hit and controller.cached_cells == 1
    assert again.schedule == first.schedule


def test_battery_below_threshold_switches_to_the_energy_objective() -> None:
    problem = _problem()
    settings = ControllerSettings(battery_threshold_pct=20.0, min_dwell=0)
    # conditions where the two objectives disagree, so that the threshold matters
    mbps = next(
        m for m in np.geomspace(0.5, 100, 60) if _best_label(problem, m) != _best_label(problem, m, "energy")
    )
    controller = AdaptiveController(problem, settings)
    normal = controller.decide(Observation(mbps, 2 * mbps, 50.0, battery_pct=80.0))
    low = controller.decide(Observation(mbps, 2 * mbps, 50.0, battery_pct=15.0))
    assert normal.objective == "latency" and normal.mode == "normal"
    assert low.objective == "energy" and low.mode == "battery-low" and low.switched
    assert normal.label == _best_label(problem, mbps) and low.label == _best_label(problem, mbps, "energy")


def test_battery_constraint_policy_keeps_latency_under_an_energy_budget() -> None:
    problem = _problem()
    settings = ControllerSettings(battery_policy="constraint", battery_budget_factor=1.05, min_dwell=0)
    controller = AdaptiveController(problem, settings)
    low = controller.decide(Observation(3.0, 6.0, 50.0, battery_pct=5.0))
    cell = controller.cell_problem(controller._key(Observation(3.0, 6.0, 50.0), "battery-low"))
    least = plan(cell, Objective("energy")).predicted.mobile_energy_mj
    assert low.objective == "latency" and low.feasible
    assert evaluate(cell, low.schedule).mobile_energy_mj <= least * 1.05 * (1 + 1e-6)
    best = plan(cell, Objective("latency"), Constraints(energy_budget_mj=least * 1.05))
    assert low.schedule == best.schedule


def test_server_queueing_pushes_work_off_the_cloud() -> None:
    problem = _problem()
    fast = Observation(20.0, 40.0, 30.0)
    idle = AdaptiveController(problem).decide(fast)
    busy = AdaptiveController(problem).decide(Observation(20.0, 40.0, 30.0, queue_ms=2_000.0))
    assert "C" in idle.label and busy.label == "M" * problem.n
