"""Exact constrained optimum for ONE budget: a resource-constrained shortest path over the chain.

Minimise ``c(x)`` subject to ``r(x) <= B`` where both are additive over the JointDNN graph (two states
per segment, :class:`~harness.planner.costmodel.CostTables`). Three steps, all exact:

1. **Lagrange multiplier.** Shortest paths on ``c + lam * r`` (linear time each). The multiplier is
   found by the breakpoint (Newton) iteration on the concave dual: it moves to where the lines of the
   cheapest infeasible and cheapest feasible schedules cross, which reaches the optimal ``lam`` in a
   handful of shortest paths. It yields the lower bound ``LB = min_x c + lam * (r - B)`` and a feasible
   incumbent. Any ``lam >= 0`` keeps the method exact; a good one only makes it faster.
2. **Reduced-cost fixing.** With forward and backward Lagrangian distances, every (segment, location)
   node has the least ``c + lam*(r - B)`` of any schedule through it, a lower bound on the cost of every
   feasible schedule through it. Nodes above the current threshold ``T`` (or whose least resource
   through them exceeds ``B``) are dead. Where only one node of a layer is alive, every partial schedule
   must pass through it, so the labels are only shifted: no work per label.
3. **Label sweep with dominance**, on the layers where both nodes are alive: per node the Pareto set of
   partial schedules ``(cost, resource)``, dropping a label if its cost-to-come plus the Lagrangian
   cost-to-go bounds it above ``T`` or its resource cannot stay within the budget.

The threshold widens geometrically from ``LB`` towards the incumbent's cost: a sweep at threshold ``T``
keeps every feasible schedule of cost ``<= T``, so as soon as it finds one of cost ``<= T`` that one is
optimal. The optimum lies just above ``LB`` on these chains, where almost every node is fixed, so a
sweep touches few labels: O(n) shortest paths plus work on the surviving labels only.
"""

from __future__ import annotations

import numpy as np

from harness.planner.costmodel import CostTables
from harness.planner.objectives import budget_limit
from harness.planner.shortest_path import shortest_path

__all__ = ["solve_one_budget"]

_WIDEN = 4.0  # threshold growth factor between sweeps
_FIRST_STEP = 1.0 / 256  # first threshold: LB + this share of the incumbent's gap
_MAX_MULTIPLIER_STEPS = 60


def _path_value(node: np.ndarray, edge: np.ndarray, schedule: np.ndarray) -> float:
    n = node.shape[0]
    padded = np.concatenate(([0], schedule, [0]))
    return float(node[np.arange(n), schedule].sum() + edge[np.arange(n + 1), padded[:-1], padded[1:]].sum())


def _distances(node: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``come[i, b]``: cheapest source -> (i, b) including segment ``i``'s cost; ``go[i, b]``: cheapest
    (i, b) -> sink excluding it. Both (n, 2); ``come + go`` is the cheapest schedule through (i, b)."""
    n = node.shape[0]
    # Flat Python lists: scalar work, where list indexing beats numpy scalars (as in shortest_path).
    n_m, n_c = node[:, 0].tolist(), node[:, 1].tolist()
    e_mm, e_mc = edge[:, 0, 0].tolist(), edge[:, 0, 1].tolist()
    e_cm, e_cc = edge[:, 1, 0].tolist(), edge[:, 1, 1].tolist()
    come_m, come_c = [0.0] * n, [0.0] * n
    m, c = e_mm[0] + n_m[0], e_mc[0] + n_c[0]
    come_m[0], come_c[0] = m, c
    for i in range(1, n):
        m, c = min(m + e_mm[i], c + e_cm[i]) + n_m[i], min(m + e_mc[i], c + e_cc[i]) + n_c[i]
        come_m[i], come_c[i] = m, c
    go_m, go_c = [0.0] * n, [0.0] * n
    m, c = e_mm[n], e_cm[n]
    go_m[n - 1], go_c[n - 1] = m, c
    for i in range(n - 2, -1, -1):
        to_m, to_c = m + n_m[i + 1], c + n_c[i + 1]
        m, c = min(e_mm[i + 1] + to_m, e_mc[i + 1] + to_c), min(e_cm[i + 1] + to_m, e_cc[i + 1] + to_c)
        go_m[i], go_c[i] = m, c
    return np.array([come_m, come_c]).T, np.array([go_m, go_c]).T


class _Problem:
    """Scalar tables of the objective ``c`` and the resource ``r`` with the budget ``limit``."""

    def __init__(self, tables: CostTables, objective: np.ndarray, resource: np.ndarray, limit: float):
        self.node_c, self.edge_c = tables.scalar(objective)
        self.node_r, self.edge_r = tables.scalar(resource)
        self.limit = limit
        self.n = tables.n

    def value(self, schedule: np.ndarray) -> tuple[float, float]:
        """(cost, resource) of a schedule."""
        return _path_value(self.node_c, self.edge_c, schedule), _path_value(
            self.node_r, self.edge_r, schedule
        )

    def lagrangian(self, lam: float) -> tuple[np.ndarray, float, float]:
        """The schedule minimising ``c + lam * r`` with its cost and resource."""
        schedule, _ = shortest_path(self.node_c + lam * self.node_r, self.edge_c + lam * self.edge_r)
        return (schedule, *self.value(schedule))


def _multiplier(
    p: _Problem, cheapest: tuple[np.ndarray, float, float], leanest: tuple[np.ndarray, float, float]
) -> tuple[float, np.ndarray, float]:
    """A multiplier near the dual optimum and the best feasible schedule met: (lam, schedule, cost).

    ``cheapest`` (lam = 0) is infeasible and ``leanest`` (least resource) feasible.
    """
    lo = cheapest  # infeasible side: r > limit
    lam = 1.0
    hi: tuple[np.ndarray, float, float] | None = None
    for _ in range(_MAX_MULTIPLIER_STEPS):
        found = p.lagrangian(lam)
        if found[2] <= p.limit:
            hi = found
            break
        lo, lam = found, lam * 4
    if hi is None:  # resource differences below float resolution; any lam >= 0 stays exact
        return lam, leanest[0], leanest[1]
    incumbent = hi if hi[1] <= leanest[1] else leanest
    for _ in range(_MAX_MULTIPLIER_STEPS):
        if lo[2] <= hi[2]:
            break
        lam = (hi[1] - lo[1]) / (lo[2] - hi[2])  # where the two schedules' dual lines cross
        line = lo[1] + lam * lo[2]
        found = p.lagrangian(lam)
        if found[1] + lam * found[2] >= line - 1e-12 * max(1.0, abs(line)):
            break  # nothing below the crossing: lam maximises the dual
        if found[2] > p.limit:
            lo = found
        else:
            hi = found
            if found[1] < incumbent[1]:
                incumbent = found
    return max(lam, 0.0), incumbent[0], incumbent[1]


_SMALL = 48  # label sets up to this size are merged in Python lists (numpy calls cost more)
_NO_INT = np.empty(0, dtype=np.int64)
_NO_FLOAT = np.empty(0)
_Front = tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]


def _front(
    cs: list[np.ndarray],
    rs: list[np.ndarray],
    steps: list[tuple[int, float, float]],
    lam: float,
    bound: float,
    threshold: float,
    room: float,
) -> _Front:
    """The labels entering one node: each source's labels (``cs[a]``, ``rs[a]``) plus its step
    (a, cost, resource), pruned by the threshold and the budget, reduced to their Pareto front sorted by
    cost. Returns (costs, resources, (parent locations, parent indices))."""
    c_parts, r_parts, loc_parts, idx_parts = [], [], [], []
    for a, step_c, step_r in steps:
        c, r = cs[a] + step_c, rs[a] + step_r
        idx = np.flatnonzero((c + lam * r + bound <= threshold) & (r <= room))
        c_parts.append(c[idx])
        r_parts.append(r[idx])
        loc_parts.append(np.full(idx.size, a, dtype=np.int64))
        idx_parts.append(idx)
    c, r = np.concatenate(c_parts), np.concatenate(r_parts)
    loc, idx = np.concatenate(loc_parts), np.concatenate(idx_parts)
    if c.size > 1:  # by cost, keep labels with strictly less resource than every cheaper one
        order = np.lexsort((r, c))
        c, r, loc, idx = c[order], r[order], loc[order], idx[order]
        front = np.empty(c.size, dtype=bool)
        front[0] = True
        front[1:] = r[1:] < np.minimum.accumulate(r[:-1])
        c, r, loc, idx = c[front], r[front], loc[front], idx[front]
    return c, r, (loc, idx)


def _front_small(
    cs: list[np.ndarray],
    rs: list[np.ndarray],
    steps: list[tuple[int, float, float]],
    lam: float,
    bound: float,
    threshold: float,
    room: float,
) -> _Front:
    """:func:`_front` on Python lists, for the few labels most nodes hold."""
    labels = []
    for a, step_c, step_r in steps:
        for j, (c0, r0) in enumerate(zip(cs[a].tolist(), rs[a].tolist(), strict=True)):
            c, r = c0 + step_c, r0 + step_r
            if c + lam * r + bound <= threshold and r <= room:
                labels.append((c, r, a, j))
    labels.sort()
    kept = []
    least = float("inf")
    for label in labels:
        if label[1] < least:
            kept.append(label)
            least = label[1]
    if not kept:
        return _NO_FLOAT, _NO_FLOAT, (_NO_INT, _NO_INT)
    c_kept, r_kept, loc, idx = zip(*kept, strict=True)
    return np.array(c_kept), np.array(r_kept), (np.array(loc), np.array(idx))


class _Sweep:
    """Label sweep at one threshold over the alive layers; see the module docstring."""

    def __init__(self, p: _Problem, lam: float) -> None:
        self.p, self.lam = p, lam
        come_l, self.go_l = _distances(p.node_c + lam * p.node_r, p.edge_c + lam * p.edge_r)  # (n, 2) each
        come_r, self.go_r = _distances(p.node_r, p.edge_r)
        self.through_l = come_l + self.go_l - lam * p.limit  # least c + lam*(r - B) via each node
        self.through_r = come_r + self.go_r  # least resource via each node
        self.lower_bound = float(self.through_l[0].min())

    def run(self, threshold: float) -> tuple[float, np.ndarray] | None:
        """The cheapest feasible schedule among those the threshold keeps (cost, schedule), or None."""
        p, lam = self.p, self.lam
        slack = 1e-9 * max(1.0, abs(threshold))
        alive = (self.through_l <= threshold + slack) & (self.through_r <= p.limit)  # (n, 2)
        alive_m, alive_c = alive[:, 0].tolist(), alive[:, 1].tolist()
        ec, er, nc, nr = p.edge_c, p.edge_r, p.node_c, p.node_r
        ec_l, er_l = ec.tolist(), er.tolist()
        nc_l, nr_l = nc.tolist(), nr.tolist()
        # Labels per location: base arrays plus a pending shift (cost, resource) applied lazily.
        empty = np.empty(0)
        cs: list[np.ndarray] = [np.zeros(1), empty]
        rs: list[np.ndarray] = [np.zeros(1), empty]
        shift_c, shift_r = [0.0, 0.0], [0.0, 0.0]
        # Per layer: an int (the one source location; labels keep their index) or each location's parents.
        layers: list[int | tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = []
        bound_base = -lam * p.limit
        for i in range(self.p.n):
            sources = [a for a in (0, 1) if cs[a].size]
            targets = [b for b, ok in ((0, alive_m[i]), (1, alive_c[i])) if ok]
            if not sources or not targets:
                return None
            if len(sources) == 1 and len(targets) == 1:  # one way through: shift, no per-label work
                a, b = sources[0], targets[0]
                shift_c[b] = shift_c[a] + ec_l[i][a][b] + nc_l[i][b]
                shift_r[b] = shift_r[a] + er_l[i][a][b] + nr_l[i][b]
                cs[b], rs[b] = cs[a], rs[a]
                if a != b:
                    cs[a], rs[a] = empty, empty
                layers.append(a)
                continue
            new_c: list[np.ndarray] = [empty, empty]
            new_r: list[np.ndarray] = [empty, empty]
            parents: list[tuple[np.ndarray, np.ndarray]] = [(_NO_INT, _NO_INT)] * 2
            small = sum(cs[a].size for a in sources) <= _SMALL
            for b in targets:
                bound = self.go_l[i, b] + bound_base  # label bound = c + lam * r + bound
                room = p.limit - self.go_r[i, b]  # label resource must stay <= room
                steps = [
                    (a, shift_c[a] + ec_l[i][a][b] + nc_l[i][b], shift_r[a] + er_l[i][a][b] + nr_l[i][b])
                    for a in sources
                ]
                merge = _front_small if small else _front
                new_c[b], new_r[b], parents[b] = merge(cs, rs, steps, lam, bound, threshold + slack, room)
            cs, rs, shift_c, shift_r = new_c, new_r, [0.0, 0.0], [0.0, 0.0]
            layers.append((parents[0], parents[1]))

        best: tuple[float, int, int] | None = None
        n = p.n
        for a in (0, 1):
            if not cs[a].size:
                continue
            c = cs[a] + (shift_c[a] + ec_l[n][a][0])
            r = rs[a] + (shift_r[a] + er_l[n][a][0])
            ok = np.flatnonzero(r <= p.limit)
            if ok.size:
                j = int(ok[np.argmin(c[ok])])
                if best is None or c[j] < best[0]:
                    best = (float(c[j]), a, j)
        if best is None:
            return None
        schedule = np.empty(n, dtype=np.int64)
        _, loc, idx = best
        for i in range(n - 1, -1, -1):
            layer = layers[i]
            schedule[i] = loc
            if isinstance(layer, int):  # shifted: the label came from the one source, same index
                loc = layer
                continue
            p_loc, p_idx = layer[loc]
            loc, idx = int(p_loc[idx]), int(p_idx[idx])
        return best[0], schedule


def solve_one_budget(
    tables: CostTables, objective: np.ndarray, resource: np.ndarray, budget: float
) -> np.ndarray | None:
    """The schedule minimising ``objective`` with ``resource <= budget`` (weights over METRICS), or None."""
    p = _Problem(tables, objective, resource, budget_limit(budget))
    leanest_schedule, _ = shortest_path(p.node_r, p.edge_r)
    leanest = (leanest_schedule, *p.value(leanest_schedule))
    if leanest[2] > p.limit:
        return None
    cheapest = p.lagrangian(0.0)
    if cheapest[2] <= p.limit:
        return cheapest[0]
    lam, incumbent, upper = _multiplier(p, cheapest, leanest)
    sweep = _Sweep(p, lam)
    gap = upper - sweep.lower_bound
    step = gap * _FIRST_STEP
    while True:
        threshold = min(sweep.lower_bound + step, upper)
        found = sweep.run(threshold)
        if found is not None and found[0] < upper:
            incumbent, upper = found[1], found[0]
        if upper <= threshold:  # nothing cheaper than the incumbent escaped the sweep: optimal
            return incumbent
        step *= _WIDEN
