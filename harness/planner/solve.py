"""The planner's entry point :func:`plan`: pick the solver, diagnose infeasibility, build the Plan.

Unconstrained problems go to the linear-time shortest path. Constrained ones first try it too: if the
unconstrained optimum already meets every budget it is also the constrained optimum. Otherwise one
binding budget goes to the exact Lagrangian/Pareto sweep (``pareto``), several to the exact integer
program (HiGHS, ``milp``). When no schedule meets the budgets, :func:`plan` raises
:class:`~models.errors.InfeasibleError` naming the constraint and the best value achievable for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from harness.planner.brute_force import brute_force
from harness.planner.costmodel import (
    CONSTRAINT_VECTORS,
    CostTables,
    evaluate,
    objective_vector,
)
from harness.planner.costs import LOCATIONS, Location, PlanningProblem
from harness.planner.milp import solve_milp
from harness.planner.objectives import Constraints, Objective, budget_limit
from harness.planner.pareto import solve_one_budget
from harness.planner.plan import Plan
from harness.planner.shortest_path import shortest_path
from models.errors import InfeasibleError, UsageError

__all__ = ["Solver", "make_plan", "plan"]

Solver = Literal["auto", "milp", "brute_force"]
_Minimiser = Callable[[CostTables, np.ndarray, list[tuple[np.ndarray, float]]], np.ndarray | None]

_UNITS = {"deadline_ms": "ms", "energy_budget_mj": "mJ", "cloud_budget_ms": "ms"}
_WHAT = {
    "deadline_ms": "latency",
    "energy_budget_mj": "mobile energy",
    "cloud_budget_ms": "cloud compute time",
}


def _budgets(constraints: Constraints) -> list[tuple[np.ndarray, float]]:
    return [(CONSTRAINT_VECTORS[name], budget) for name, budget in constraints.active().items()]


def _meets(problem: PlanningProblem, schedule: np.ndarray, constraints: Constraints) -> bool:
    predicted = evaluate(problem, schedule)
    return all(predicted.value(n) <= budget_limit(b) for n, b in constraints.active().items())


def _diagnose(problem: PlanningProblem, constraints: Constraints, minimise: _Minimiser) -> InfeasibleError:
    """The error for budgets no schedule meets: which one, and the best value achievable for it."""
    tables = problem.tables
    active = constraints.active()
    # 1) A budget that no schedule meets even on its own.
    for name, budget in active.items():
        schedule, _ = shortest_path(*tables.scalar(CONSTRAINT_VECTORS[name]))
        best = evaluate(problem, schedule).value(name)
        if best > budget_limit(budget):
            return InfeasibleError(
                f"{name} = {budget:g} {_UNITS[name]} cannot be met: the lowest {_WHAT[name]} of any "
                f"schedule is {best:.4g} {_UNITS[name]}; raise {name} to at least that",
                constraint=name,
                best_achievable=best,
            )
    # 2) Each is achievable alone but not together: the best value of one given the others.
    for name, budget in active.items():
        others = constraints.without(name)
        found = minimise(tables, CONSTRAINT_VECTORS[name], _budgets(others))
        if found is None:
            continue
        best = evaluate(problem, found).value(name)
        limits = ", ".join(f"{k} = {v:g}" for k, v in others.active().items())
        return InfeasibleError(
            f"{name} = {budget:g} {_UNITS[name]} cannot be met together with {limits}: the lowest "
            f"{_WHAT[name]} under the other budgets is {best:.4g} {_UNITS[name]}",
            constraint=name,
            best_achievable=best,
        )
    names = ", ".join(active)
    return InfeasibleError(f"the budgets {names} cannot be met together", constraint=names)


def make_plan(
    problem: PlanningProblem,
    schedule: Sequence[int] | Sequence[Location] | np.ndarray,
    objective: Objective,
    constraints: Constraints | None = None,
    *,
    solver: str = "",
    solve_ms: float = 0.0,
    binding: list[str] | None = None,
) -> Plan:
    """A :class:`Plan` for a given schedule (used for optima and baselines alike)."""
    constraints = constraints or Constraints()
    predicted = evaluate(problem, schedule)
    locations = [LOCATIONS[int(v == "cloud") if isinstance(v, str) else int(v)] for v in schedule]
    return Plan(
        locations=locations,
        predicted=predicted,
        objective=objective,
        objective_value=predicted.objective(objective),
        phase=problem.phase,
        constraints=constraints,
        binding=binding or [],
        slack={n: b - predicted.value(n) for n, b in constraints.active().items()},
        solver=solver,
        solve_ms=solve_ms,
        link=problem.link.name,
        model=problem.model,
        segment_names=list(problem.segments.names),
    )


def plan(
    problem: PlanningProblem,
    objective: Objective | None = None,
    constraints: Constraints | None = None,
    *,
    solver: Solver = "auto",
) -> Plan:
    """The optimal schedule of ``problem`` for ``objective`` under ``constraints``.

    ``solver``: ``auto`` (shortest path; when budgets bite, the Lagrangian/Pareto sweep for one budget
    and the integer program for several), ``milp`` (always the
    integer program when there are budgets), ``brute_force`` (enumeration, <= 20 segments; tests).
    Raises :class:`~models.errors.InfeasibleError` when no schedule meets the budgets.
    """
    objective = objective or Objective()
    constraints = constraints or Constraints()
    if solver not in ("auto", "milp", "brute_force"):
        raise UsageError(f"solver must be auto, milp or brute_force, got {solver!r}")
    start = time.perf_counter()
    tables = problem.tables
    weights = objective_vector(objective)
    budgets = _budgets(constraints)
    minimise: _Minimiser = brute_force if solver == "brute_force" else solve_milp
    free_schedule, _ = shortest_path(*tables.scalar(weights))
    active = constraints.active()
    free = evaluate(problem, free_schedule) if active else None
    binding = [n for n, b in active.items() if free is not None and free.value(n) > budget_limit(b)]
    if solver == "brute_force":
        schedule, used = brute_force(tables, weights, budgets), "brute_force"
    elif (not binding and solver == "auto") or not budgets:
        schedule, used = free_schedule, "shortest_path"
    elif solver == "auto" and len(budgets) == 1:
        schedule, used = solve_one_budget(tables, weights, *budgets[0]), "pareto"
    else:
        schedule, used = solve_milp(tables, weights, budgets), "milp"
    if schedule is None or (budgets and not _meets(problem, schedule, constraints)):
        raise _diagnose(problem, constraints, minimise)
    solve_ms = (time.perf_counter() - start) * 1e3
    return make_plan(
        problem, schedule, objective, constraints, solver=used, solve_ms=solve_ms, binding=binding
    )
