"""``index.md``: the page that shows a run — what was run, the links as achieved, the summary, the plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["markdown_table", "write_index"]

_PLOTS = [
    ("layerwise.png", "Per-segment latency on the phone and on the server, and the tensor size at each cut."),
    ("latency_vs_split.png", "End-to-end latency of every single cut, predicted vs measured, per link."),
    ("energy_vs_split.png", "Mobile energy of every single cut, predicted vs measured, per link."),
    ("predicted_vs_measured.png", "Predicted vs measured latency of every executed schedule."),
    ("breakdown.png", "Where the time goes: baselines vs the JointDNN plan (latency objective)."),
]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: list[str]) -> str:
    """A GitHub-flavoured Markdown table of some columns (numbers to 3 significant digits)."""
    cols = [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def write_index(
    run_dir: Path, summary: pd.DataFrame, links: pd.DataFrame, measurements: pd.DataFrame
) -> Path:
    """Write ``run_dir/index.md`` and return its path."""
    meta: dict[str, Any] = {}
    if (run_dir / "run.json").is_file():
        meta = json.loads((run_dir / "run.json").read_text())
    model = meta.get("model_name", meta.get("model", run_dir.name))
    parts = [f"# JointDNN run {run_dir.name}", ""]
    parts.append(
        f"Model **{model}** ({meta.get('quant', '?')}, {meta.get('num_segments', '?')} segments) on device "
        f"**{meta.get('device_name', meta.get('device', '?'))}**, server {meta.get('server', '?')}, "
        f"{meta.get('repeats', '?')} repeats per schedule, budgets {meta.get('constraints') or 'none'}."
    )
    parts += [
        "",
        "Planning inputs: "
        + meta.get(
            "planning_note",
            "the profiles' per-segment costs; per transfer the planner sees half the RTT plus the "
            "measured per-request overhead (`request_overhead_ms`): one request/response costs one round trip.",
        )
        + ".",
    ]
    parts += ["", "## Links (measured before the run)", ""]
    if not links.empty:
        parts.append(
            markdown_table(
                links,
                [
                    "link",
                    "shaping",
                    "target_up_mbps",
                    "up_mbps",
                    "target_down_mbps",
                    "down_mbps",
                    "target_rtt_ms",
                    "rtt_ms",
                    "request_overhead_ms",
                    "mobile_scale",
                    "cloud_scale",
                    *(c for c in ("needed_mobile_scale", "needed_cloud_scale") if c in links.columns),
                ],
            )
        )
        notes = [f"{r.link}: {r.note}" for r in links.itertuples() if isinstance(r.note, str) and r.note]
        parts += ["", *(f"- {n}" for n in notes)] if notes else []
        parts += [
            "",
            "`tc-netem`: netem delay + tbf rate on a veth between two network namespaces; `tc-tbf+relay`: "
            "tbf rate on the veth, round trip from a delay relay (kernel without netem); `pacing`: "
            "client-side sleeps (not privileged).",
        ]
    parts += ["", "## Summary (medians of measured runs)", ""]
    if not summary.empty:
        parts.append(
            markdown_table(
                summary,
                [
                    "link",
                    "objective",
                    "schedule",
                    "pred_latency_ms",
                    "meas_latency_ms",
                    "latency_error_pct",
                    "pred_energy_mj",
                    "meas_energy_mj",
                    "speedup_vs_mobile_only",
                    "speedup_vs_cloud_only",
                    "energy_saving_vs_mobile_only",
                    "energy_saving_vs_cloud_only",
                    "regret",
                    "outputs_match",
                ],
            )
        )
        parts += [
            "",
            "Schedules: one letter per segment, M = mobile, C = cloud. Speedups and savings are ratios of "
            "measured medians (baseline / plan). Regret = the plan's measured objective / the best measured "
            "among all single cuts and baselines.",
        ]
    if not measurements.empty:
        ok = int(measurements["output_matches"].astype(bool).sum())
        parts += [
            "",
            f"Output check: {ok} of {len(measurements)} executions matched the whole model's output.",
        ]
    parts += ["", "## Plots", ""]
    for name, caption in _PLOTS:
        if (run_dir / name).is_file():
            parts += [f"### {caption}", "", f"![{caption}]({name})", ""]
    parts += [
        "## Files",
        "",
        "`plans.csv`, `measurements.csv`, `summary.csv`, `links.csv`, `profiles/`, `run.json`.",
    ]
    path = run_dir / "index.md"
    path.write_text("\n".join(parts) + "\n")
    return path
