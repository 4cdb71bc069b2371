"""Exhaustive search over all 2^n schedules: the reference the tests hold the solvers to (n <= 20)."""

from __future__ import annotations

import numpy as np

from harness.planner.costmodel import CostTables, _sum_metrics
from harness.planner.objectives import budget_limit
from models.errors import UsageError

__all__ = ["MAX_BRUTE_FORCE_SEGMENTS", "all_schedules", "brute_force"]

MAX_BRUTE_FORCE_SEGMENTS = 20
_CHUNK = 1 << 14  # schedules per vectorised batch (bounds memory: chunk * (n+1) * q floats)


def all_schedules(n: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Schedules ``start..stop-1`` of the 2^n (bit i of the index = segment i on the cloud), (k, n)."""
    stop = 1 << n if stop is None else stop
    index = np.arange(start, stop, dtype=np.int64)
    return (index[:, None] >> np.arange(n, dtype=np.int64)) & 1


def brute_force(
    tables: CostTables, objective: np.ndarray, budgets: list[tuple[np.ndarray, float]]
) -> np.ndarray | None:
    """The cheapest feasible schedule by enumeration (first in index order on ties), or None if none is."""
    n = tables.n
    if n > MAX_BRUTE_FORCE_SEGMENTS:
        raise UsageError(f"brute force is limited to {MAX_BRUTE_FORCE_SEGMENTS} segments, got {n}")
    weights = np.stack([objective, *(w for w, _ in budgets)], axis=1)  # (M, 1 + q)
    limits = np.array([budget_limit(b) for _, b in budgets])
    best: tuple[float, np.ndarray] | None = None
    for start in range(0, 1 << n, _CHUNK):
        schedules = all_schedules(n, start, min(start + _CHUNK, 1 << n))
        totals = _sum_metrics(tables, schedules, weights)
        feasible = np.all(totals[:, 1:] <= limits, axis=1) if budgets else np.ones(len(totals), bool)
        if not feasible.any():
            continue
        values = np.where(feasible, totals[:, 0], np.inf)
        i = int(np.argmin(values))
        if best is None or values[i] < best[0]:
            best = (float(values[i]), schedules[i].copy())
    return None if best is None else best[1]
