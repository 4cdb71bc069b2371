"""Rebuild a run directory's derived files (summary, plots, index) from its CSVs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.reports.index import write_index
from harness.reports.plots import write_plots
from harness.reports.schema import LINKS_COLUMNS, MEASUREMENT_COLUMNS, PLAN_COLUMNS
from harness.reports.summary import summarize
from harness.reports.sweep import plot_measured_sweep
from models.errors import UsageError

__all__ = ["Report", "build_report", "load_run"]


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    run_dir: Path
    summary: pd.DataFrame
    index: Path
    plots: list[Path]


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"{path.parent} is not a run directory: {path.name} is missing")
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a readable CSV: {exc}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{path} lacks columns {', '.join(missing)} (written by another version?)")
    return frame


def load_run(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(plans, measurements, links) of a run directory, validated."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    plans = _read(run_dir / "plans.csv", PLAN_COLUMNS)
    measurements = _read(run_dir / "measurements.csv", MEASUREMENT_COLUMNS)
    links = _read(run_dir / "links.csv", LINKS_COLUMNS)
    for frame in (plans, measurements):
        frame["schedule"] = frame["schedule"].fillna("").astype(str)
    return plans, measurements, links


def build_report(run_dir: Path) -> Report:
    """Write ``summary.csv``, the plots and ``index.md`` of ``run_dir`` from its CSVs."""
    run_dir = Path(run_dir)
    plans, measurements, links = load_run(run_dir)
    summary = summarize(plans, measurements, links)
    summary.to_csv(run_dir / "summary.csv", index=False)
    model = run_dir.name
    if (run_dir / "run.json").is_file():
        model = str(json.loads((run_dir / "run.json").read_text()).get("model_name", model))
    plots = write_plots(run_dir, plans, measurements, model)
    sweep = plot_measured_sweep(
        plans, measurements, links, run_dir / "bandwidth_sweep.png", f"{model}: measured latency vs uplink"
    )
    plots += [sweep] if sweep is not None else []
    index = write_index(run_dir, summary, links, measurements, plans)
    return Report(run_dir=run_dir, summary=summary, index=index, plots=plots)
