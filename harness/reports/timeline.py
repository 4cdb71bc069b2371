"""Timeline plots of an adaptive run (``decisions.csv``): one PNG per adaptive policy.

Five panels over trace time: the link's bandwidth (the trace's truth and the controller's estimate),
the server's load (expected queueing and backlog), the battery level, the chosen schedule (one row per
distinct schedule, switches visible as jumps) and every request's measured latency.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_timeline", "plot_timelines"]


def plot_timeline(decisions: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Draw one policy's requests (rows of ``decisions.csv``) to ``path``."""
    d = decisions.sort_values("t_s")
    t = d["t_s"]
    fig = Figure(figsize=(10, 11))
    axes = fig.subplots(5, 1, sharex=True)
    ax = axes[0]
    ax.step(t, d["true_up_mbps"], where="post", label="uplink (trace)", color="tab:blue")
    ax.plot(t, d["est_up_mbps"], ".", ms=3, label="uplink (estimate)", color="tab:blue", alpha=0.5)
    ax.step(t, d["true_down_mbps"], where="post", label="downlink (trace)", color="tab:green")
    ax.plot(t, d["est_down_mbps"], ".", ms=3, label="downlink (estimate)", color="tab:green", alpha=0.5)
    ax.set_yscale("log")
    ax.set_ylabel("Mbps")
    ax.legend(fontsize=7, ncols=2)
    ax = axes[1]
    ax.plot(t, d["est_queue_ms"], label="expected queueing (ms)", color="tab:red")
    ax.set_ylabel("queue ms")
    twin = ax.twinx()
    twin.plot(t, d["server_backlog"], ":", label="backlog (requests)", color="tab:gray")
    twin.set_ylabel("backlog")
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[2]
    ax.plot(t, d["battery_pct"], color="tab:olive")
    ax.set_ylabel("battery %")
    ax = axes[3]
    labels = sorted(d["schedule"].unique(), key=lambda s: (s.count("C"), s))
    index = {s: i for i, s in enumerate(labels)}
    ax.step(t, d["schedule"].map(index), where="post", color="tab:purple")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("schedule")
    ax = axes[4]
    ax.plot(t, d["latency_ms"], ".", ms=4, color="k")
    ax.set_ylabel("latency ms")
    ax.set_xlabel("trace time (s)")
    fig.suptitle(title or str(d["policy"].iloc[0]) if len(d) else title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def plot_timelines(decisions: pd.DataFrame, run_dir: Path) -> list[Path]:
    """``timeline-<policy>.png`` for every adaptive policy of a run."""
    paths = []
    for policy, rows in decisions.groupby("policy"):
        if str(policy).startswith("adaptive") and len(rows):
            paths.append(plot_timeline(rows, Path(run_dir) / f"timeline-{policy}.png", f"{policy}"))
    return paths
