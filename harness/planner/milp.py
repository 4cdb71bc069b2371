"""Constrained optimum: an exact 0/1 integer program solved by HiGHS (``scipy.optimize.milp``).

Variables: ``x_i`` in {0,1} (segment ``i`` on the cloud), and for each boundary ``i = 0..n``
``u_i >= x_i - x_{i-1}`` (an upload-direction switch) and ``d_i >= x_{i-1} - x_i`` (a download-direction
switch), ``0 <= u, d <= 1``, with ``x_{-1} = x_n = 0`` (input and result on the mobile). Every cost is
``sum_i node[i,0] + x_i (node[i,1] - node[i,0]) + u_i edge[i,0,1] + d_i edge[i,1,0]``. Transfer
costs are non-negative, so at an optimum the switches may sit above their lower bounds only where that
changes nothing; the schedule ``x`` is re-evaluated exactly by the cost model afterwards.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from harness.errors import PlanError
from harness.planner.costmodel import CostTables
from harness.planner.objectives import FEASIBILITY_RTOL

__all__ = ["solve_milp"]


def _row(tables: CostTables, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients over [x (n), u (n+1), d (n+1)] and the constant term of a weighted metric."""
    node, edge = tables.scalar(weights)
    coef = np.concatenate((node[:, 1] - node[:, 0], edge[:, 0, 1], edge[:, 1, 0]))
    return coef, float(node[:, 0].sum())


def solve_milp(
    tables: CostTables,
    objective: np.ndarray,
    budgets: list[tuple[np.ndarray, float]],
    *,
    time_limit_s: float = 60.0,
) -> np.ndarray | None:
    """The schedule minimising ``objective`` (weights over METRICS) with ``metric . w <= budget``.

    Returns None when the program is infeasible. Raises :class:`PlanError` if HiGHS fails otherwise.
    """
    n = tables.n
    nv = n + 2 * (n + 1)
    xs, us, ds = 0, n, n + (n + 1)
    # Switch rows: u_i - x_i + x_{i-1} >= 0 and d_i - x_{i-1} + x_i >= 0, for i = 0..n.
    rows, cols, vals = [], [], []
    for i in range(n + 1):
        r_u, r_d = 2 * i, 2 * i + 1
        rows += [r_u, r_d]
        cols += [us + i, ds + i]
        vals += [1.0, 1.0]
        if i < n:  # x_i exists
            rows += [r_u, r_d]
            cols += [xs + i, xs + i]
            vals += [-1.0, 1.0]
        if i > 0:  # x_{i-1} exists
            rows += [r_u, r_d]
            cols += [xs + i - 1, xs + i - 1]
            vals += [1.0, -1.0]
    switch = coo_matrix((vals, (rows, cols)), shape=(2 * (n + 1), nv)).tocsr()
    constraints = [LinearConstraint(switch, lb=0.0, ub=np.inf)]
    for weights, budget in budgets:
        coef, const = _row(tables, weights)
        # A hair of slack so that a schedule exactly on the budget is not lost to rounding.
        limit = budget * (1 + FEASIBILITY_RTOL) - const
        constraints.append(LinearConstraint(coef[None, :], lb=-np.inf, ub=limit))
    c, _ = _row(tables, objective)
    integrality = np.zeros(nv)
    integrality[:n] = 1
    result = milp(
        c,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(0.0, 1.0),
        options={"time_limit": time_limit_s, "mip_rel_gap": 1e-9},
    )
    if result.status == 2:  # infeasible
        return None
    if result.x is None or result.status not in (0,):
        raise PlanError(f"the integer program did not solve: {result.message} (status {result.status})")
    return np.rint(result.x[:n]).astype(np.int64)
