"""Bandwidth sweeps: where the optimal split moves as the uplink changes (CSV + PNG plot)."""

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
from models.errors import InfeasibleError, UsageError

__all__ = ["SweepPoint", "parse_range", "plot_sweep", "sweep_bandwidth", "write_sweep_csv"]


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


def parse_range(text: str) -> tuple[float, float]:
    """``LO:HI`` in Mbps, 0 < LO < HI."""
    try:
        lo_text, hi_text = text.split(":")
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        raise UsageError(f"--sweep-bandwidth wants LO:HI in Mbps (e.g. 0.1:100), got {text!r}") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise UsageError(f"--sweep-bandwidth needs 0 < LO < HI, got {text!r}")
    return lo, hi


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


def plot_sweep(
    points: list[SweepPoint], path: Path, *, objective: Objective, title: str = "", constrained: bool = False
) -> Path:
    """Two panels over the uplink (log Mbps): objective of optimum vs baselines; segments on the cloud.

    ``constrained``: the optimum respects budgets the baselines ignore (said in the legend).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x = [p.up_mbps for p in points]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True, constrained_layout=True)
    note = " (ignores budgets)" if constrained else ""
    top.plot(x, [p.mobile_only_value for p in points], "--", label="mobile only" + note)
    top.plot(x, [p.cloud_only_value for p in points], "--", label="cloud only" + note)
    top.plot(
        x, [p.best_single_cut_value for p in points], ":", lw=2, label="best single cut (Neurosurgeon)" + note
    )
    top.plot(
        x,
        [p.objective_value for p in points],
        "-",
        lw=2,
        color="black",
        label="JointDNN optimum" + (" (within budgets)" if constrained else ""),
    )
    top.set_xscale("log")
    top.set_yscale("log")
    name = {"latency": "latency", "energy": "mobile energy", "weighted": "weighted cost"}[objective.kind]
    top.set_ylabel(f"{name} per {'step' if 'train' in title else 'query'} ({objective.unit})")
    top.legend(fontsize=8)
    top.grid(True, which="both", alpha=0.3)
    if title:
        top.set_title(title)
    bottom.step(x, [p.cloud_segments if p.label else np.nan for p in points], where="mid", color="black")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("segments on the cloud (count)")
    bottom.set_xlabel("uplink bandwidth (Mbit/s)")
    bottom.grid(True, which="both", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
