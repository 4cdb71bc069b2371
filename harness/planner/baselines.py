"""The schedules JointDNN must beat: mobile-only, cloud-only and the best single cut (Neurosurgeon).

A single cut runs segments ``0..k-1`` on the mobile and ``k..n-1`` on the cloud (``k = 0`` is
cloud-only, ``k = n`` mobile-only), then downloads the result. Baselines ignore the budgets; their
Plans carry the slack so callers can see which ones would break them.
"""

from __future__ import annotations

import numpy as np

from harness.planner.costmodel import evaluate_many, objective_vector
from harness.planner.costs import PlanningProblem
from harness.planner.objectives import Constraints, Objective
from harness.planner.plan import Plan
from harness.planner.solve import make_plan

__all__ = ["BASELINE_NAMES", "baselines", "single_cut_schedule", "single_cut_schedules"]

BASELINE_NAMES: tuple[str, ...] = ("mobile_only", "cloud_only", "best_single_cut")


def single_cut_schedule(n: int, k: int) -> list[int]:
    """Segments before ``k`` on the mobile, from ``k`` on the cloud (0 <= k <= n)."""
    return [0] * k + [1] * (n - k)


def single_cut_schedules(n: int) -> np.ndarray:
    """All n+1 single-cut schedules, row ``k`` = cut before segment ``k``, shape (n+1, n)."""
    return (np.arange(n)[None, :] >= np.arange(n + 1)[:, None]).astype(np.int64)


def baselines(
    problem: PlanningProblem, objective: Objective | None = None, constraints: Constraints | None = None
) -> dict[str, Plan]:
    """Plans of mobile-only, cloud-only and the best single cut for ``objective`` (ties: later cut)."""
    objective = objective or Objective()
    n = problem.n
    cuts = single_cut_schedules(n)
    values = evaluate_many(problem, cuts, objective_vector(objective)[:, None])[:, 0]  # (n+1,)
    k = int(np.flatnonzero(values <= values.min())[-1])  # ties -> more on the mobile
    return {
        "mobile_only": make_plan(problem, [0] * n, objective, constraints, solver="baseline:mobile_only"),
        "cloud_only": make_plan(problem, [1] * n, objective, constraints, solver="baseline:cloud_only"),
        "best_single_cut": make_plan(
            problem, single_cut_schedule(n, k), objective, constraints, solver="baseline:best_single_cut"
        ),
    }
