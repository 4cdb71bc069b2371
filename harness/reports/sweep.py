"""Bandwidth-sweep plots: predicted (``jointdnn plan --sweep-bandwidth``) and measured (a run over many links).

The predicted points come from :func:`harness.planner.sweep.sweep_bandwidth`; the measured sweep
(:func:`plot_measured_sweep`) reads a run whose links differ in uplink bandwidth (``jointdnn demo``
makes one) and draws what was *executed*: mobile-only, cloud-only with the JPEG upload and the
JointDNN plan, medians over the repeats. matplotlib's object API (Agg, no pyplot state), like
:mod:`harness.reports.plots`.
"""

from __future__ import annotations

from pathlib import Path

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harness.planner.objectives import Objective
from harness.planner.sweep import SweepPoint
from harness.reports.summary import measured_medians, regime

__all__ = ["MIN_SWEEP_LINKS", "plot_measured_sweep", "plot_sweep"]

MIN_SWEEP_LINKS = 4  # a run over at least this many links of distinct uplink bandwidth gets the plot
_MARKERS = {"mobile-only": "o", "split": "D", "cloud-only": "^"}


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


def _measured(plans: pd.DataFrame, medians: pd.DataFrame, link: str, kind: str) -> tuple[float, str]:
    """(median measured latency, schedule) of the latency objective's ``kind`` plan on ``link``."""
    rows = plans[(plans["link"] == link) & (plans["kind"] == kind) & (plans["objective"].isin(["latency"]))]
    label = str(rows.iloc[0]["schedule"]) if not rows.empty else ""
    key = (link, label)
    if not label or label == "nan" or medians.empty or key not in medians.index:
        return math.nan, label
    return float(medians.loc[key, "latency_ms"]), label  # type: ignore[arg-type]


def plot_measured_sweep(
    plans: pd.DataFrame, measurements: pd.DataFrame, links: pd.DataFrame, path: Path, title: str = ""
) -> Path | None:
    """Measured latency vs achieved uplink Mbps (log): mobile-only, cloud-only (JPEG), JointDNN plan
    (and the best single cut, Neurosurgeon's choice with the raw input, if it was executed).

    The plan's marker says its regime (circle mobile-only, diamond split, triangle cloud-only); its
    predicted latency is the dotted line. None (nothing written) if the run has fewer than
    :data:`MIN_SWEEP_LINKS` links of distinct uplink bandwidth or no latency plans.
    """
    if links.empty or links["target_up_mbps"].nunique() < MIN_SWEEP_LINKS or plans.empty:
        return None
    order = links.sort_values("target_up_mbps")
    medians = measured_medians(measurements)
    x = order["up_mbps"].to_numpy(dtype=float)
    series: dict[str, list[float]] = {"mobile_only": [], "cloud_only_jpeg": [], "best_single_cut": [], "jointdnn": []}
    labels, predicted = [], []
    for link in order["link"]:
        for kind, values in series.items():
            value, label = _measured(plans, medians, str(link), kind)
            values.append(value)
            if kind == "jointdnn":
                labels.append(label)
                chosen = plans[(plans["link"] == link) & (plans["kind"] == kind) & (plans["objective"] == "latency")]
                predicted.append(float(chosen.iloc[0]["pred_latency_ms"]) if not chosen.empty else math.nan)
    if all(math.isnan(v) for v in series["jointdnn"]):
        return None
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    # the plan often *is* one of the baselines: draw it wide and pale underneath, the baselines on top
    ax.plot(x, series["jointdnn"], "-", lw=7, color="black", alpha=0.25, label="JointDNN plan (measured)")
    ax.plot(x, series["mobile_only"], "o--", color="#1f77b4", ms=4, label="mobile-only (measured)")
    ax.plot(x, series["cloud_only_jpeg"], "s--", color="#d62728", ms=4, label="cloud-only, JPEG upload (measured)")
    if any(math.isfinite(v) for v in series["best_single_cut"]):
        ax.plot(x, series["best_single_cut"], "x:", color="#2ca02c", label="best single cut, raw input (measured)")
    ax.plot(x, predicted, ":", color="#555555", label="JointDNN plan (predicted)")
    for xi, yi, label in zip(x, series["jointdnn"], labels, strict=True):
        kind = regime(label)
        if kind and math.isfinite(yi):
            ax.plot([xi], [yi], _MARKERS[kind], color="black", markersize=8)
    for kind, marker in _MARKERS.items():  # legend entries of the regimes
        ax.plot([], [], marker, color="black", linestyle="none", label=f"plan is {kind}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("uplink bandwidth (Mbit/s, achieved)")
    ax.set_ylabel("end-to-end latency (ms, median)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
