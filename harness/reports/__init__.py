"""Run reports: the CSVs of a run directory, its summary, plots and index page.

:func:`build_report` (re)derives ``summary.csv``, the PNG plots and ``index.md`` from ``plans.csv``,
``measurements.csv`` and ``links.csv``; ``jointdnn report RUN_DIR`` calls it.
"""

from __future__ import annotations

from harness.reports.build import build_report, load_run
from harness.reports.summary import measured_medians, summarize

__all__ = ["build_report", "load_run", "measured_medians", "summarize"]
