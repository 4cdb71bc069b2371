"""The report's PNG plots, one idea each, drawn with matplotlib's object API (Agg, no pyplot state).

* ``layerwise.png`` — per segment: mobile vs cloud latency (bars, ms) and the size of the tensor that
  crosses the network if the model is cut after it (line, KB): the classic layer-wise figure.
* ``latency_vs_split.png`` / ``energy_vs_split.png`` — one panel per link: end-to-end latency (ms) or
  mobile energy (mJ) of every single cut, predicted (line) and measured (median, p10-p90 bars), with
  the planner's choice marked.
* ``predicted_vs_measured.png`` — every executed schedule, predicted vs measured latency, per link,
  against the y = x line and a ±15 % band.
* ``breakdown.png`` — measured latency of mobile-only, cloud-only, best single cut and the planner's
  choice (latency objective), stacked by part: device compute, upload, server, download.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.reports.summary import measured_medians
from models.profile_rows import segment_rows

__all__ = [
    "plot_breakdown",
    "plot_layerwise",
    "plot_metric_vs_split",
    "plot_predicted_vs_measured",
    "write_plots",
]

_DPI = 110
_COLORS = {"mobile": "#1f77b4", "cloud": "#ff7f0e", "size": "#555555"}
_LINK_COLORS = ["#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf"]


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    return path


def plot_layerwise(mobile: pd.DataFrame, cloud: pd.DataFrame, path: Path, title: str) -> Path:
    """Per-segment latency on both sides (bars, log ms) with the boundary size (line, KB)."""
    m, c = segment_rows(mobile), segment_rows(cloud)
    n = len(m)
    x = np.arange(n)
    fig = Figure(figsize=(max(7.0, 0.45 * n + 3), 4.6))
    ax = fig.add_subplot()
    width = 0.4
    ax.bar(x - width / 2, m["latency_ms_median"], width, label="mobile latency (ms)", color=_COLORS["mobile"])
    ax.bar(
        x + width / 2,
        c["latency_ms_median"].to_numpy()[:n],
        width,
        label="cloud latency (ms)",
        color=_COLORS["cloud"],
    )
    ax.set_yscale("log")
    ax.set_ylabel("segment latency (ms, log scale)")
    ax.set_xlabel("segment (last layer)")
    labels = [f"{i}: {str(name)[:18]}" for i, name in zip(m["segment"], m["last_layer"], strict=True)]
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    size = fig.axes[0].twinx()
    size.plot(x, m["out_bytes"] / 1024, "o-", color=_COLORS["size"], label="output size (KB)")
    size.set_ylabel("tensor sent if cut after the segment (KB)")
    size.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()
    more = size.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right", fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def _single_cuts(plans: pd.DataFrame, link: str, codec: str = "raw") -> pd.DataFrame:
    """Single cuts of ``link`` uploading the input as ``codec`` (raw: every cut; jpeg: cut 0 only)."""
    cuts = plans[(plans["link"] == link) & (plans["kind"] == "single_cut")]
    if "input_codec" in cuts.columns:
        cuts = cuts[cuts["input_codec"].fillna("raw") == codec]
    return cuts.sort_values("cut")


def plot_metric_vs_split(
    plans: pd.DataFrame, measurements: pd.DataFrame, path: Path, *, metric: str, title: str
) -> Path:
    """One panel per link: ``metric`` (latency or energy) against the single cut point."""
    medians = measured_medians(measurements)
    pred_col, meas_col, lo_col, hi_col, y_label = {
        "latency": (
            "pred_latency_ms",
            "latency_ms",
            "latency_p10_ms",
            "latency_p90_ms",
            "end-to-end latency (ms)",
        ),
        "energy": (
            "pred_mobile_energy_mj",
            "mobile_energy_mj",
            "energy_p10_mj",
            "energy_p90_mj",
            "mobile energy per inference (mJ)",
        ),
    }[metric]
    objective = metric
    links = list(dict.fromkeys(plans["link"]))
    fig = Figure(figsize=(4.6 * max(1, len(links)), 4.2))
    for i, link in enumerate(links):
        ax = fig.add_subplot(1, len(links), i + 1)
        cuts = _single_cuts(plans, link)
        k = cuts["cut"].to_numpy(dtype=int)
        ax.plot(k, cuts[pred_col], "-", color="#888888", label="predicted")
        meas, lo, hi = [], [], []
        for label in cuts["schedule"]:
            key = (link, label)
            ok = not medians.empty and key in medians.index
            meas.append(float(medians.loc[key, meas_col]) if ok else math.nan)
            lo.append(float(medians.loc[key, lo_col]) if ok else math.nan)
            hi.append(float(medians.loc[key, hi_col]) if ok else math.nan)
        meas_a = np.array(meas)
        yerr = np.array([meas_a - np.array(lo), np.array(hi) - meas_a])
        ax.errorbar(
            k,
            meas_a,
            yerr=np.clip(yerr, 0, None),
            fmt="o",
            color=_LINK_COLORS[i % 5],
            capsize=3,
            label="measured (median, p10-p90)",
        )
        for _, jpeg in _single_cuts(plans, link, "jpeg").iterrows():  # cloud-only uploading the JPEG
            key = (link, str(jpeg["schedule"]))
            value = float(medians.loc[key, meas_col]) if not medians.empty and key in medians.index else math.nan
            ax.plot([0], [value], "s", mfc="none", color=_LINK_COLORS[i % 5], ms=9, label="cloud-only, JPEG (measured)")
            ax.plot([0], [float(jpeg[pred_col])], "s", mfc="none", color="#888888", ms=6, label="cloud-only, JPEG (predicted)")
        chosen = plans[
            (plans["link"] == link) & (plans["kind"] == "jointdnn") & (plans["objective"] == objective)
        ]
        label = str(chosen.iloc[0]["schedule"]) if not chosen.empty else ""
        key = (link, label)
        if label and label != "nan" and not medians.empty and key in medians.index:
            value = float(medians.loc[key, meas_col])
            letters = label.split("+")[0]
            if letters == "M" * letters.count("M") + "C" * letters.count("C"):  # a single cut: mark it
                ax.plot(
                    [letters.count("M")],
                    [value],
                    "*",
                    color="black",
                    markersize=14,
                    label="JointDNN plan (measured)",
                )
            else:  # a multi-hop schedule has no cut point: show its level
                ax.axhline(
                    value,
                    color="black",
                    linestyle=":",
                    linewidth=1,
                    label="JointDNN multi-hop plan (measured)",
                )
        ax.set_xlabel(
            f"cut point k (segments < k on the mobile; 0 = cloud-only, {len(k) - 1} = mobile-only)",
            fontsize=8,
        )
        ax.set_ylabel(y_label)
        ax.set_title(f"{link}")
        if len(k) and float(np.nanmax(meas_a if np.isfinite(meas_a).any() else cuts[pred_col])) > 20 * float(
            max(np.nanmin(cuts[pred_col]), 1e-9)
        ):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title)
    return _save(fig, path)


def plot_predicted_vs_measured(
    plans: pd.DataFrame, measurements: pd.DataFrame, path: Path, title: str
) -> Path:
    """Every executed schedule: predicted vs measured median latency, per link."""
    medians = measured_medians(measurements)
    fig = Figure(figsize=(5.6, 5.2))
    ax = fig.add_subplot()
    lows, highs = [], []
    for i, link in enumerate(dict.fromkeys(plans["link"])):
        predicted = (
            plans[plans["link"] == link].drop_duplicates("schedule").set_index("schedule")["pred_latency_ms"]
        )
        pairs = [
            (float(predicted[s]), float(medians.loc[(link, s), "latency_ms"]))
            for s in predicted.index
            if isinstance(s, str) and s and not medians.empty and (link, s) in medians.index
        ]
        if not pairs:
            continue
        p, m = np.array(pairs).T
        ax.scatter(p, m, s=22, color=_LINK_COLORS[i % 5], label=link, alpha=0.85)
        lows.append(min(p.min(), m.min()))
        highs.append(max(p.max(), m.max()))
    if lows:
        lo, hi = max(min(lows) * 0.8, 1e-3), max(highs) * 1.25
        line = np.array([lo, hi])
        ax.plot(line, line, "k-", linewidth=1, label="measured = predicted")
        ax.fill_between(line, line / 1.15, line / 0.85, color="#cccccc", alpha=0.4, label="±15 % of measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xlabel("predicted end-to-end latency (ms)")
    ax.set_ylabel("measured end-to-end latency (ms, median)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def plot_breakdown(plans: pd.DataFrame, measurements: pd.DataFrame, path: Path, title: str) -> Path:
    """Stacked measured latency parts of the baselines and the latency plan, per link."""
    medians = measured_medians(measurements)
    parts = [
        ("device_compute_ms", "device compute"),
        ("upload_ms", "upload"),
        ("server_ms", "server compute"),
        ("download_ms", "download"),
    ]
    colors = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c"]
    kinds = [
        ("mobile_only", "mobile-only"),
        ("cloud_only", "cloud-only"),
        ("cloud_only_jpeg", "cloud-only (JPEG)"),
        ("best_single_cut", "best single cut"),
        ("jointdnn", "JointDNN"),
    ]
    links = list(dict.fromkeys(plans["link"]))
    bars: list[tuple[str, list[float]]] = []
    for link in links:
        rows = plans[(plans["link"] == link) & (plans["objective"] == "latency")]
        for kind, name in kinds:
            row = rows[rows["kind"] == kind]
            label = str(row.iloc[0]["schedule"]) if not row.empty else ""
            key = (link, label)
            if label and label != "nan" and not medians.empty and key in medians.index:
                bars.append((f"{link}\n{name}", [float(medians.loc[key, c]) for c, _ in parts]))
    fig = Figure(figsize=(max(6.0, 0.9 * len(bars) + 2), 4.6))
    ax = fig.add_subplot()
    x = np.arange(len(bars))
    bottom = np.zeros(len(bars))
    for j, (_, name) in enumerate(parts):
        values = np.array([b[1][j] for b in bars]) if bars else np.zeros(0)
        ax.bar(x, values, 0.65, bottom=bottom, label=name, color=colors[j])
        bottom += values
    for xi, total in zip(x, bottom, strict=True):
        ax.annotate(
            f"{total:.3g} ms",
            (xi, total),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(x, [b[0] for b in bars], fontsize=7)
    ax.set_ylabel("measured latency (ms, median)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def write_plots(run_dir: Path, plans: pd.DataFrame, measurements: pd.DataFrame, model: str) -> list[Path]:
    """Write every plot of a run directory; returns the files written."""
    from models.profile_rows import read_profile

    written = []
    mobile, cloud = run_dir / "profiles" / "mobile.csv", run_dir / "profiles" / "cloud.csv"
    if mobile.is_file() and cloud.is_file():
        written.append(
            plot_layerwise(
                read_profile(mobile),
                read_profile(cloud),
                run_dir / "layerwise.png",
                f"{model}: per-segment latency and boundary size",
            )
        )
    if plans.empty or measurements.empty:
        return written
    written.append(
        plot_metric_vs_split(
            plans,
            measurements,
            run_dir / "latency_vs_split.png",
            metric="latency",
            title=f"{model}: end-to-end latency vs single cut point",
        )
    )
    written.append(
        plot_metric_vs_split(
            plans,
            measurements,
            run_dir / "energy_vs_split.png",
            metric="energy",
            title=f"{model}: mobile energy vs single cut point",
        )
    )
    written.append(
        plot_predicted_vs_measured(
            plans,
            measurements,
            run_dir / "predicted_vs_measured.png",
            f"{model}: predicted vs measured latency",
        )
    )
    written.append(
        plot_breakdown(
            plans,
            measurements,
            run_dir / "breakdown.png",
            f"{model}: where the time goes (latency objective)",
        )
    )
    return written
