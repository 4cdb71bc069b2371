"""The bandwidth-sweep plot of ``jointdnn plan --sweep-bandwidth``: where the optimal split moves.

The points come from :func:`harness.planner.sweep.sweep_bandwidth`; this module only draws them, with
matplotlib's object API (Agg, no pyplot state), like :mod:`harness.reports.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.planner.objectives import Objective
from harness.planner.sweep import SweepPoint

__all__ = ["plot_sweep"]


def plot_sweep(
    points: list[SweepPoint], path: Path, *, objective: Objective, title: str = "", constrained: bool = False
) -> Path:
    """Two panels over the uplink (log Mbps): objective of optimum vs baselines; segments on the cloud.

    ``constrained``: the optimum respects budgets the baselines ignore (said in the legend).
    """
    x = [p.up_mbps for p in points]
    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
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
    return path
