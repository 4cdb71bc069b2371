"""Bandwidth sweeps: where the optimal split moves as the uplink changes (points + CSV).

The plot of a sweep is drawn by :func:`harness.reports.sweep.plot_sweep`; the planner draws nothing.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.planner.baselines import baselines
from harness.planner.costs import PlanningProblem
from harness.planner.objectives import Constraints, Objective
from harness.planner.solve import plan
from models.errors import InfeasibleError

__all__ = ["SweepPoint", "sweep_bandwidth", "write_sweep_csv"]


@dataclass(frozen=True)
class SweepPoint:
    """The optimum at one uplink bandwidth (NaN values and empty label when infeasible)."""

    up_mbps: float
    label: str  # e.g. MMCC; "" if infeasible
    cloud_segments: int
    cuts: str  # boundaries where the location changes, e.g. "2;4"
    objective_value: float
    latency_ms: float
    mobile_energy_mj: float
    cloud_ms: float
    mobile_only_value: float
    cloud_only_value: float
    best_single_cut_value: float
    solver: str


def sweep_bandwidth(
    problem: PlanningProblem,
    up_mbps: list[float] | np.ndarray,
    objective: Objective | None = None,
    constraints: Constraints | None = None,
) -> list[SweepPoint]:
    """Re-plan at every uplink bandwidth (downlink unchanged)."""
    objective = objective or Objective()
    points = []
    for mbps in up_mbps:
        p = problem.with_link(problem.link.with_bandwidth(float(mbps)))
        base = baselines(p, objective)
        values = {k: v.objective_value for k, v in base.items()}
        try:
            best = plan(p, objective, constraints)
        except InfeasibleError:
            nan = math.nan
            points.append(
                SweepPoint(
                    float(mbps),
                    "",
                    0,
                    "",
                    nan,
                    nan,
                    nan,
                    nan,
                    values["mobile_only"],
                    values["cloud_only"],
                    values["best_single_cut"],
                    "infeasible",
                )
            )
            continue
        points.append(
            SweepPoint(
                up_mbps=float(mbps),
                label=best.label,
                cloud_segments=sum(best.schedule),
                cuts=";".join(map(str, best.cuts)),
                objective_value=best.objective_value,
                latency_ms=best.latency_ms,
                mobile_energy_mj=best.mobile_energy_mj,
                cloud_ms=best.cloud_ms,
                mobile_only_value=values["mobile_only"],
                cloud_only_value=values["cloud_only"],
                best_single_cut_value=values["best_single_cut"],
                solver=best.solver,
            )
        )
    return points


def write_sweep_csv(points: list[SweepPoint], path: Path) -> Path:
    """One row per bandwidth, columns = :class:`SweepPoint` fields."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(SweepPoint.__dataclass_fields__), lineterminator="\n")
        writer.writeheader()
        for point in points:
            writer.writerow(asdict(point))
    return path
