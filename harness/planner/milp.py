"""Constrained optimum: an exact 0/1 integer program solved by HiGHS (``scipy.optimize.milp``).

The program is the JointDNN graph as a unit flow: one binary ``f[i, a, b]`` per edge "location ``a``
before boundary ``i``, location ``b`` after it" (``i = 0..n``; the source and the sink are on the
mobile, so ``f[0, cloud, *]`` and ``f[n, *, cloud]`` are fixed to 0), flow conservation at every
(segment, location) node, and one unit leaving the source. Edge ``f[i, a, b]`` costs the boundary
transfer ``edge[i, a, b]`` plus segment ``i``'s compute ``node[i, b]``. Every budget is one linear
row over the same variables. Without budgets the constraint matrix is a network matrix (totally
unimodular), so the LP relaxation is already integral; with one to three budgets it stays tight,
which is why HiGHS closes these programs fast (a two-variable "switch" formulation has a much weaker
relaxation). The schedule read off the flow is re-evaluated exactly by the cost model afterwards.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from harness.planner.costmodel import CostTables
from harness.planner.objectives import budget_limit
from models.errors import PlanError

__all__ = ["solve_milp"]


def _coefficients(tables: CostTables, weights: np.ndarray) -> np.ndarray:
    """Cost of each flow variable (index ``4*i + 2*a + b``) for a weight vector over METRICS."""
    node, edge = tables.scalar(weights)  # (n, 2), (n+1, 2, 2)
    coef = edge.copy()
    coef[: tables.n] += node[:, None, :]  # entering segment i at location b pays node[i, b]
    return coef.reshape(-1)


def _network(n: int) -> tuple[LinearConstraint, Bounds]:
    """Flow conservation at every (segment, location) node, one unit from the source."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i in range(n):
        for loc in (0, 1):
            r = 2 * i + loc
            for a in (0, 1):  # into (i, loc)
                rows.append(r)
                cols.append(4 * i + 2 * a + loc)
                vals.append(1.0)
            for b in (0, 1):  # out of (i, loc)
                rows.append(r)
                cols.append(4 * (i + 1) + 2 * loc + b)
                vals.append(-1.0)
    source = 2 * n
    rows += [source, source]
    cols += [0, 1]  # f[0, mobile, mobile], f[0, mobile, cloud]
    vals += [1.0, 1.0]
    nv = 4 * (n + 1)
    matrix = coo_matrix((vals, (rows, cols)), shape=(2 * n + 1, nv)).tocsr()
    rhs = np.zeros(2 * n + 1)
    rhs[source] = 1.0
    upper = np.ones(nv)
    upper[[2, 3]] = 0.0  # boundary 0 starts on the mobile
    upper[4 * n + np.array([1, 3])] = 0.0  # boundary n ends on the mobile
    return LinearConstraint(matrix, lb=rhs, ub=rhs), Bounds(np.zeros(nv), upper)


def solve_milp(
    tables: CostTables,
    objective: np.ndarray,
    budgets: list[tuple[np.ndarray, float]],
    *,
    time_limit_s: float = 120.0,
) -> np.ndarray | None:
    """The schedule minimising ``objective`` (weights over METRICS) with ``metric . w <= budget``.

    Returns None when the program is infeasible. Raises :class:`PlanError` if HiGHS fails or runs out
    of time before proving optimality.
    """
    n = tables.n
    network, bounds = _network(n)
    constraints = [network]
    for weights, budget in budgets:
        # A hair of slack so that a schedule exactly on the budget is not lost to rounding.
        row = _coefficients(tables, weights)[None, :]
        constraints.append(LinearConstraint(row, lb=-np.inf, ub=budget_limit(budget)))
    result = milp(
        _coefficients(tables, objective),
        constraints=constraints,
        integrality=np.ones(4 * (n + 1)),
        bounds=bounds,
        options={"time_limit": time_limit_s, "mip_rel_gap": 1e-9},
    )
    if result.status == 2:  # infeasible
        return None
    if result.x is None or result.status != 0:
        raise PlanError(
            f"the integer program over {n} segments did not solve: {result.message} (status {result.status})"
        )
    flow = result.x.reshape(n + 1, 2, 2)
    return np.rint(flow[:n, :, 1].sum(axis=1)).astype(np.int64)  # cloud if the flow enters (i, cloud)
