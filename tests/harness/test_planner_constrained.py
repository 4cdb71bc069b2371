"""The one-budget constrained solver (``pareto``: Lagrangian bound, reduced-cost fixing, label sweep)
is exact: it matches brute force on small chains and the integer program on longer ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.planner import Objective, PlanningProblem, SegmentCosts, evaluate
from harness.planner.brute_force import brute_force
from harness.planner.costmodel import CONSTRAINT_VECTORS, objective_vector
from harness.planner.milp import solve_milp
from harness.planner.objectives import budget_limit
from harness.planner.pareto import solve_one_budget
from harness.planner.shortest_path import shortest_path
from harness.specs import load_link

from .test_planner_properties import OBJECTIVES, problems

BUDGETS = tuple(CONSTRAINT_VECTORS)


def _value(problem: PlanningProblem, schedule: np.ndarray, objective: Objective) -> float:
    return evaluate(problem, schedule).objective(objective)


def _check(
    problem: PlanningProblem, objective: Objective, name: str, budget: float, reference: object
) -> None:
    weights = objective_vector(objective)
    found = solve_one_budget(problem.tables, weights, CONSTRAINT_VECTORS[name], budget)
    expected = reference(problem.tables, weights, [(CONSTRAINT_VECTORS[name], budget)])  # type: ignore[operator]
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert evaluate(problem, found).value(name) <= budget_limit(budget)
    best, got = _value(problem, expected, objective), _value(problem, found, objective)
    assert abs(got - best) <= 1e-9 * max(1.0, abs(best))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problem=problems(max_n=14),
    data=st.data(),
    k=st.integers(0, 2),
    b=st.integers(0, 2),
    factor=st.sampled_from([0.0, 0.5, 0.8, 0.95, 0.99, 1.0, 1.01, 1.2]),
)
def test_one_budget_matches_brute_force(
    problem: PlanningProblem, data: st.DataObject, k: int, b: int, factor: float
) -> None:
    name = BUDGETS[b]
    schedule = data.draw(st.lists(st.integers(0, 1), min_size=problem.n, max_size=problem.n))
    budget = evaluate(problem, schedule).value(name) * factor  # around a random schedule's value
    _check(problem, OBJECTIVES[k], name, budget, brute_force)


def _chain(n: int, seed: int, ties: bool) -> PlanningProblem:
    """A phone/server-like chain; ``ties`` draws small integer costs, so many schedules tie."""
    rng = np.random.default_rng(seed)
    if ties:
        mobile = rng.integers(1, 4, n).astype(float)
        cloud = rng.integers(0, 2, n).astype(float)
        out = rng.choice([0, 1_000, 100_000], n)
    else:
        mobile = rng.uniform(1, 50, n)
        cloud = mobile / rng.uniform(5, 20, n)
        out = np.where(rng.random(n) < 0.2, rng.integers(1_000, 20_000, n), rng.integers(100_000, 900_000, n))
    segments = SegmentCosts(
        mobile_ms=mobile, mobile_mj=mobile * 1.5, cloud_ms=cloud, out_bytes=out, input_bytes=150_528
    )
    return PlanningProblem(segments=segments, link=load_link("4g"), waiting_mw=300.0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_one_budget_matches_the_integer_program_on_longer_chains(seed: int, ties: bool) -> None:
    problem = _chain(80, seed, ties)
    objective = OBJECTIVES[seed % 3]
    name = BUDGETS[seed % 3]
    free = problem.tables.scalar(objective_vector(objective))
    unconstrained = evaluate(problem, shortest_path(*free)[0]).value(name)
    _check(problem, objective, name, unconstrained * 0.6, solve_milp)
