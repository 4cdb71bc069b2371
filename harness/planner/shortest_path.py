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
    # Flat Python lists: the loop below is scalar work, and list indexing beats numpy scalars ~10x.
    n_m, n_c = node[:, 0].tolist(), node[:, 1].tolist()
    e_mm, e_mc = edge[:, 0, 0].tolist(), edge[:, 0, 1].tolist()
    e_cm, e_cc = edge[:, 1, 0].tolist(), edge[:, 1, 1].tolist()
    # Cost of reaching segment 0 at each location from the source (always on the mobile).
    best_m = e_mm[0] + n_m[0]
    best_c = e_mc[0] + n_c[0]
    back_m = [0] * n  # predecessor location of segment i if i runs on the mobile
    back_c = [0] * n  # ... if i runs on the cloud
    for i in range(1, n):
        mm, cm = best_m + e_mm[i], best_c + e_cm[i]
        mc, cc = best_m + e_mc[i], best_c + e_cc[i]
        if mm <= cm:
            new_m = mm
        else:
            new_m, back_m[i] = cm, 1
        if mc <= cc:
            new_c = mc
        else:
            new_c, back_c[i] = cc, 1
        best_m, best_c = new_m + n_m[i], new_c + n_c[i]
    end_m = best_m + e_mm[n]
    end_c = best_c + e_cm[n]
    loc = 0 if end_m <= end_c else 1
    cost = min(end_m, end_c)
    schedule = [0] * n
    for i in range(n - 1, -1, -1):
        schedule[i] = loc
        loc = back_c[i] if loc else back_m[i]
    return np.array(schedule, dtype=np.int64), float(cost)
