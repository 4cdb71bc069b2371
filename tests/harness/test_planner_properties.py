"""Property tests: the planner's solvers agree with brute force and beat the baselines (n <= 14)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.planner import (
    Constraints,
    Objective,
    PlanningProblem,
    SegmentCosts,
    baselines,
    evaluate,
    plan,
)
from harness.planner.brute_force import all_schedules
from harness.planner.costmodel import METRICS
from harness.planner.objectives import budget_limit
from harness.specs import LinkSpec
from models.errors import InfeasibleError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OBJECTIVES = [Objective("latency"), Objective("energy"), Objective("weighted", 1.0, 0.25)]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@st.composite
def problems(draw: st.DrawFn, max_n: int = 14) -> PlanningProblem:
    n = draw(st.integers(1, max_n))
    # Measured costs: zero or at least a microsecond / microjoule (no subnormal floats).
    cost = st.floats(0.0, 500.0).map(lambda v: 0.0 if v < 1e-3 else v)
    size = st.integers(0, 2_000_000)
    small = st.floats(0.0, 20.0).map(lambda v: 0.0 if v < 1e-3 else v)
    training = draw(st.booleans())
    link = LinkSpec(
        name="random",
        up_mbps=draw(st.floats(0.1, 100.0)),
        down_mbps=draw(st.floats(0.1, 200.0)),
        rtt_ms=draw(st.floats(0.0, 150.0)),
        alpha_up_mw_per_mbps=draw(st.floats(0.0, 900.0)),
        alpha_down_mw_per_mbps=draw(st.floats(0.0, 200.0)),
        beta_mw=draw(st.floats(0.0, 1500.0)),
    )
    vec = lambda strategy: draw(st.lists(strategy, min_size=n, max_size=n))  # noqa: E731
    segments = SegmentCosts(
        mobile_ms=vec(cost),
        mobile_mj=vec(cost),
        cloud_ms=vec(st.floats(0.0, 50.0).map(lambda v: 0.0 if v < 1e-3 else v)),
        out_bytes=vec(size),
        input_bytes=draw(size),
        mobile_backward_ms=vec(cost) if training else None,
        mobile_backward_mj=vec(cost) if training else None,
        cloud_backward_ms=vec(st.floats(0.0, 50.0).map(lambda v: 0.0 if v < 1e-3 else v))
        if training
        else None,
        param_bytes=vec(size) if training else None,
        # fixed cost per invocation starting at each segment (mobile stage / cloud request), or none
        mobile_overhead_ms=vec(small) if draw(st.booleans()) else None,
        mobile_overhead_mj=vec(small) if draw(st.booleans()) else None,
        cloud_overhead_ms=vec(small) if draw(st.booleans()) else None,
    )
    return PlanningProblem(
        segments=segments,
        link=link,
        waiting_mw=draw(st.floats(0.0, 500.0)),
        phase="training" if training else "inference",
        include_waiting_energy=draw(st.booleans()),
        sync_every_steps=draw(st.sampled_from([None, 1, 10])) if training else None,
    )


@st.composite
def constraints_for(draw: st.DrawFn, problem: PlanningProblem) -> Constraints:
    """Budgets around the values of random schedules: some slack, some tight, some impossible."""
    values: dict[str, float | None] = {}
    for name in ("deadline_ms", "energy_budget_mj", "cloud_budget_ms"):
        if not draw(st.booleans()):
            values[name] = None
            continue
        schedule = draw(st.lists(st.integers(0, 1), min_size=problem.n, max_size=problem.n))
        factor = draw(st.sampled_from([0.3, 0.8, 0.97, 1.05, 1.5]))
        values[name] = evaluate(problem, schedule).value(name) * factor
    return Constraints(**values)


@SETTINGS
@given(problem=problems(), k=st.integers(0, 2))
def test_shortest_path_matches_brute_force_for_each_objective(problem: PlanningProblem, k: int) -> None:
    objective = OBJECTIVES[k]
    fast = plan(problem, objective)
    exhaustive = plan(problem, objective, solver="brute_force")
    assert fast.solver == "shortest_path"
    assert _close(fast.objective_value, exhaustive.objective_value)
    # The plan's value is the cost model's value of its own schedule.
    assert _close(evaluate(problem, fast.locations).objective(objective), fast.objective_value)


@SETTINGS
@given(data=st.data(), problem=problems(max_n=12), k=st.integers(0, 2))
def test_integer_program_matches_brute_force_under_random_constraints(
    data: st.DataObject, problem: PlanningProblem, k: int
) -> None:
    objective = OBJECTIVES[k]
    constraints = data.draw(constraints_for(problem))
    outcomes = []
    for solver in ("milp", "brute_force", "auto"):
        try:
            outcomes.append(plan(problem, objective, constraints, solver=solver))  # type: ignore[arg-type]
        except InfeasibleError as exc:
            outcomes.append(exc)
    milp_out, brute_out, auto_out = outcomes
    if isinstance(brute_out, InfeasibleError):
        assert isinstance(milp_out, InfeasibleError) and isinstance(auto_out, InfeasibleError)
        assert milp_out.constraint == brute_out.constraint
        assert milp_out.best_achievable is not None and brute_out.best_achievable is not None
        assert _close(milp_out.best_achievable, brute_out.best_achievable)
        # The named budget really is below what any schedule (meeting the other budgets) achieves.
        assert milp_out.best_achievable > constraints.active()[milp_out.constraint]
        return
    assert not isinstance(milp_out, InfeasibleError) and not isinstance(auto_out, InfeasibleError)
    assert _close(milp_out.objective_value, brute_out.objective_value)
    assert _close(auto_out.objective_value, brute_out.objective_value)
    for name, budget in constraints.active().items():
        assert milp_out.predicted.value(name) <= budget_limit(budget)
        assert auto_out.predicted.value(name) <= budget_limit(budget)


@SETTINGS
@given(problem=problems(), k=st.integers(0, 2))
def test_plan_never_worse_than_any_baseline(problem: PlanningProblem, k: int) -> None:
    objective = OBJECTIVES[k]
    best = plan(problem, objective)
    base = baselines(problem, objective)
    assert set(base) == {"mobile_only", "cloud_only", "best_single_cut"}
    assert base["mobile_only"].label == "M" * problem.n and base["cloud_only"].label == "C" * problem.n
    for name, other in base.items():
        assert best.objective_value <= other.objective_value * (1 + 1e-12) + 1e-12, name
    # The best single cut is no worse than the two extremes (both are single cuts).
    assert base["best_single_cut"].objective_value <= min(
        base["mobile_only"].objective_value, base["cloud_only"].objective_value
    ) * (1 + 1e-12)


@SETTINGS
@given(problem=problems(), data=st.data(), k=st.integers(0, 2))
def test_plan_under_constraints_never_worse_than_a_feasible_baseline(
    problem: PlanningProblem, data: st.DataObject, k: int
) -> None:
    objective = OBJECTIVES[k]
    constraints = data.draw(constraints_for(problem))
    try:
        best = plan(problem, objective, constraints)
    except InfeasibleError:
        for other in baselines(problem, objective, constraints).values():
            budgets = constraints.active()
            assert any(other.predicted.value(n) > budget_limit(b) for n, b in budgets.items())
        return
    for other in baselines(problem, objective, constraints).values():
        if all(other.predicted.value(n) <= budget_limit(b) for n, b in constraints.active().items()):
            assert best.objective_value <= other.objective_value * (1 + 1e-9) + 1e-9


@SETTINGS
@given(
    n=st.integers(1, 14),
    data=st.data(),
    k=st.integers(0, 1),
)
def test_free_transfers_put_every_segment_where_it_is_cheapest(n: int, data: st.DataObject, k: int) -> None:
    # Integer costs in distinct pairs: no ties. Zero bytes, zero round trip: transfers cost nothing.
    ints = st.lists(st.integers(1, 1000), min_size=n, max_size=n)
    mobile, cloud = np.array(data.draw(ints), float), np.array(data.draw(ints), float)
    cloud = np.where(cloud == mobile, cloud + 0.5, cloud)
    segments = SegmentCosts(
        mobile_ms=mobile, mobile_mj=mobile, cloud_ms=cloud, out_bytes=np.zeros(n), input_bytes=0
    )
    link = LinkSpec(
        name="free",
        up_mbps=1,
        down_mbps=1,
        rtt_ms=0,
        alpha_up_mw_per_mbps=0,
        alpha_down_mw_per_mbps=0,
        beta_mw=0,
    )
    # Energy: waiting power 1000 mW makes a cloud segment cost cloud_ms * 1 mJ, mirroring the mobile.
    problem = PlanningProblem(segments=segments, link=link, waiting_mw=1000.0)
    objective = OBJECTIVES[k]
    best = plan(problem, objective)
    expected = ["cloud" if c < m else "mobile" for m, c in zip(mobile, cloud, strict=True)]
    assert best.locations == expected
    assert best.predicted.latency_transfer_ms == 0.0
    assert _close(best.objective_value, float(np.minimum(mobile, cloud).sum()))


def test_brute_force_enumerates_every_schedule_once() -> None:
    schedules = all_schedules(5)
    assert schedules.shape == (32, 5)
    assert len({tuple(s) for s in schedules.tolist()}) == 32


@pytest.mark.parametrize("phase", ["inference", "training"])
def test_breakdown_parts_add_up(phase: str) -> None:
    rng = np.random.default_rng(3)
    n = 9
    segments = SegmentCosts(
        mobile_ms=rng.uniform(1, 50, n),
        mobile_mj=rng.uniform(1, 80, n),
        cloud_ms=rng.uniform(0.1, 5, n),
        out_bytes=rng.integers(1000, 10**6, n),
        input_bytes=150528,
        mobile_backward_ms=rng.uniform(1, 90, n),
        mobile_backward_mj=rng.uniform(1, 150, n),
        cloud_backward_ms=rng.uniform(0.1, 9, n),
        param_bytes=rng.integers(0, 10**6, n),
    )
    link = LinkSpec(
        name="x",
        up_mbps=5.85,
        down_mbps=13.76,
        rtt_ms=50,
        alpha_up_mw_per_mbps=438.39,
        alpha_down_mw_per_mbps=51.97,
        beta_mw=1288.04,
    )
    problem = PlanningProblem(segments=segments, link=link, waiting_mw=300, phase=phase)  # type: ignore[arg-type]
    for schedule in all_schedules(n)[::37]:
        b = evaluate(problem, schedule)
        assert _close(b.latency_ms, b.latency_compute_ms + b.latency_transfer_ms)
        assert _close(b.latency_compute_ms, b.mobile_compute_ms + b.cloud_compute_ms)
        assert _close(
            b.mobile_energy_mj,
            b.mobile_compute_mj + b.mobile_transfer_mj + b.mobile_waiting_mj + b.mobile_memory_mj,
        )
        switches = int(np.abs(np.diff([0, *schedule, 0])).sum())
        inner = int(np.abs(np.diff(schedule)).sum())
        # Training sends the activation forward and the gradient back across every inner boundary.
        expected = switches if phase == "inference" else 2 * inner + int(schedule[0])
        assert b.transfers == expected
    assert len(METRICS) == 11
