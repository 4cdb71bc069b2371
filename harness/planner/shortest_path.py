"""Unconstrained optimum: shortest path through the JointDNN graph, linear in the number of segments.

The graph has a source (input on the mobile), two nodes per segment (segment ``i`` on the mobile or on
the cloud) and a sink (result on the mobile); an edge ``loc_{i-1} -> loc_i`` costs the boundary
transfer plus segment ``i``'s compute at ``loc_i``. The graph is a layered DAG, so the shortest path is
a two-state dynamic program over the layers: O(n) time, O(n) memory for the back-pointers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["shortest_path"]


def shortest_path(node: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, float]:
    """The cheapest schedule for scalar costs ``node`` (n, 2) and ``edge`` (n+1, 2, 2), and its cost.

    Ties go to the mobile (no transfer, no dependence on the network).
    """
    n = node.shape[0]
    nd: list[list[float]] = node.tolist()
    ed: list[list[list[float]]] = edge.tolist()
    # Cost of reaching segment 0 at each location from the source (always on the mobile).
    best_m = ed[0][0][0] + nd[0][0]
    best_c = ed[0][0][1] + nd[0][1]
    back: list[tuple[int, int]] = [(0, 0)] * n  # for segment i: (predecessor if i on mobile, if on cloud)
    for i in range(1, n):
        e = ed[i]
        mm, cm = best_m + e[0][0], best_c + e[1][0]
        mc, cc = best_m + e[0][1], best_c + e[1][1]
        from_m_to_m = mm <= cm
        from_m_to_c = mc <= cc
        back[i] = (0 if from_m_to_m else 1, 0 if from_m_to_c else 1)
        best_m = (mm if from_m_to_m else cm) + nd[i][0]
        best_c = (mc if from_m_to_c else cc) + nd[i][1]
    end_m = best_m + ed[n][0][0]
    end_c = best_c + ed[n][1][0]
    loc = 0 if end_m <= end_c else 1
    cost = min(end_m, end_c)
    schedule = np.empty(n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        schedule[i] = loc
        loc = back[i][loc]
    return schedule, float(cost)
