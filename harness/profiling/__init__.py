"""Profiling jobs: measure every segment of a bundle on devices and write per-segment profile CSVs."""

from __future__ import annotations

from harness.profiling.job import (
    DEFAULT_OUT_ROOT,
    InChain,
    JobListener,
    JobResult,
    ProfileSettings,
    Unit,
    completed_units,
    export_for_profiling,
    measure_in_chain,
    profile_csv_path,
    profile_device,
    profile_devices,
)

__all__ = [
    "DEFAULT_OUT_ROOT",
    "InChain",
    "JobListener",
    "JobResult",
    "ProfileSettings",
    "Unit",
    "completed_units",
    "export_for_profiling",
    "measure_in_chain",
    "profile_csv_path",
    "profile_device",
    "profile_devices",
]
