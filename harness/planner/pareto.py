"""Exact constrained optimum for ONE budget: Lagrangian bounds + a Pareto label sweep over the chain.

With a single budget (e.g. cloud compute <= B) the problem is a resource-constrained shortest path.
HiGHS solves it, but random knapsack-like chains can take seconds at 200 segments, so this module:

1. finds a Lagrange multiplier ``lam`` by bisection: shortest paths on ``cost + lam * resource`` give a
   feasible incumbent (upper bound) and the Lagrangian lower bound;
2. sweeps the chain forward keeping, per (segment, location), the Pareto set of partial schedules
   (cost, resource), pruning any label that cannot stay within the budget (resource lower bound to
   go) or cannot beat the incumbent (Lagrangian bound to go: for every feasible completion,
   ``cost >= c + lam * r + togo_lam - lam * B``).

Both prunings only drop labels that cannot lead to a better feasible schedule, so the result is the
exact optimum (ties: the incumbent). Time is linear in ``n`` times the surviving Pareto set size.
"""

from __future__ import annotations

import numpy as np

from harness.planner.costmodel import CostTables
from harness.planner.objectives import budget_limit
from harness.planner.shortest_path import shortest_path

__all__ = ["solve_one_budget"]


def _path_value(node: np.ndarray, edge: np.ndarray, schedule: np.ndarray) -> float:
    n = node.shape[0]
    padded = np.concatenate(([0], schedule, [0]))
    return float(node[np.arange(n), schedule].sum() + edge[np.arange(n + 1), padded[:-1], padded[1:]].sum())


def _to_go(node: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """``togo[i, a]``: cheapest completion after segment ``i`` ran at ``a`` (to the sink), shape (n, 2)."""
    n = node.shape[0]
    togo = np.empty((n, 2))
    togo[n - 1] = edge[n, :, 0]
    for i in range(n - 2, -1, -1):
        step = edge[i + 1] + (node[i + 1] + togo[i + 1])[None, :]  # (a, b)
        togo[i] = step.min(axis=1)
    return togo


def solve_one_budget(
    tables: CostTables, objective: np.ndarray, resource: np.ndarray, budget: float
) -> np.ndarray | None:
    """The schedule minimising ``objective`` with ``resource <= budget`` (weights over METRICS), or None."""
    node_c, edge_c = tables.scalar(objective)
    node_r, edge_r = tables.scalar(resource)
    limit = budget_limit(budget)
    n = tables.n

    best_r_schedule, min_r = shortest_path(node_r, edge_r)
    if min_r > limit:
        return None
    incumbent = best_r_schedule
    upper = _path_value(node_c, edge_c, incumbent)

    def lagrangian(lam: float) -> tuple[np.ndarray, float]:
        schedule, _ = shortest_path(node_c + lam * node_r, edge_c + lam * edge_r)
        return schedule, _path_value(node_r, edge_r, schedule)

    # Bisection on the multiplier: r(P_lam) decreases as lam grows.
    lo, hi = 0.0, 1.0
    for _ in range(80):
        schedule, used = lagrangian(hi)
        if used <= limit:
            break
        lo, hi = hi, hi * 4
    for _ in range(40):
        schedule, used = lagrangian(hi)
        if used <= limit:
            value = _path_value(node_c, edge_c, schedule)
            if value < upper:
                incumbent, upper = schedule, value
        mid = (lo + hi) / 2
        schedule, used = lagrangian(mid)
        if used <= limit:
            hi = mid
            value = _path_value(node_c, edge_c, schedule)
            if value < upper:
                incumbent, upper = schedule, value
        else:
            lo = mid
        if hi - lo <= 1e-9 * max(1.0, hi):
            break
    lam = hi
    togo_lam = _to_go(node_c + lam * node_r, edge_c + lam * edge_r)
    togo_r = _to_go(node_r, edge_r)
    slack = 1e-9 * max(1.0, abs(upper))

    # Forward Pareto sweep. Labels per location: cost c, resource r, parent (location, index).
    layers: list[
        list[tuple[np.ndarray, np.ndarray]]
    ] = []  # per segment, per location: (parent_loc, parent_idx)
    c_prev = [np.array([0.0]), np.array([])]
    r_prev = [np.array([0.0]), np.array([])]
    for i in range(n):
        c_next, r_next, parents = [], [], []
        for b in (0, 1):
            cs, rs, pl, pi = [], [], [], []
            for a in (0, 1):
                if c_prev[a].size == 0 or (i == 0 and a == 1):
                    continue
                cs.append(c_prev[a] + edge_c[i, a, b] + node_c[i, b])
                rs.append(r_prev[a] + edge_r[i, a, b] + node_r[i, b])
                pl.append(np.full(c_prev[a].size, a))
                pi.append(np.arange(c_prev[a].size))
            c, r = np.concatenate(cs), np.concatenate(rs)
            p_loc, p_idx = np.concatenate(pl), np.concatenate(pi)
            keep = (r + togo_r[i, b] <= limit) & (
                c + lam * r + togo_lam[i, b] - lam * budget <= upper + slack
            )
            c, r, p_loc, p_idx = c[keep], r[keep], p_loc[keep], p_idx[keep]
            if c.size:
                order = np.lexsort((r, c))  # by cost, then resource
                c, r, p_loc, p_idx = c[order], r[order], p_loc[order], p_idx[order]
                prior_min = np.minimum.accumulate(np.concatenate(([np.inf], r[:-1])))
                front = r < prior_min  # strictly less resource than every cheaper label
                c, r, p_loc, p_idx = c[front], r[front], p_loc[front], p_idx[front]
            c_next.append(c)
            r_next.append(r)
            parents.append((p_loc, p_idx))
        layers.append(parents)
        c_prev, r_prev = c_next, r_next

    best: tuple[float, int, int] | None = None
    for a in (0, 1):
        if c_prev[a].size == 0:
            continue
        c = c_prev[a] + edge_c[n, a, 0]
        r = r_prev[a] + edge_r[n, a, 0]
        ok = np.flatnonzero(r <= limit)
        if ok.size:
            j = int(ok[np.argmin(c[ok])])
            if best is None or c[j] < best[0]:
                best = (float(c[j]), a, j)
    if best is None or best[0] >= upper:
        return incumbent
    schedule = np.empty(n, dtype=np.int64)
    _, loc, idx = best
    for i in range(n - 1, -1, -1):
        schedule[i] = loc
        p_loc, p_idx = layers[i][loc]
        loc, idx = int(p_loc[idx]), int(p_idx[idx])
    return schedule
