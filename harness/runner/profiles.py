"""Make sure a run has the per-segment profiles the planner needs, measuring what is missing.

Mobile profiles live at ``device_profiles/measured/<device>/<model>-<quant>.csv`` (the profiling job's
place, under the working directory) and are reused while their ``artifact_sha256`` match the bundle's
segments; missing or stale segments are measured and appended one at a time (atomic appends), so an
interrupted run resumes where it stopped. The profiling job of :mod:`harness.profiling` does the measuring (``benchmark_model`` on
ADB devices, in-process LiteRT on the local one).

The cloud profile comes from the server's ``/profile`` endpoint (it times its own interpreters) and is
written into the run directory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from harness.devices.base import Device
from harness.errors import ProfileError
from harness.profile_rows import (
    COLUMNS,
    WHOLE_MODEL_SEGMENT,
    ProfileRow,
    append_rows,
    read_profile,
    segment_rows,
)
from harness.profiling import DEFAULT_OUT_ROOT, JobListener, ProfileSettings, profile_device
from models.bundle import BundleManifest

__all__ = ["cloud_profile_rows", "ensure_mobile_profile", "planning_profile", "write_rows"]


class _Listener(JobListener):
    def __init__(self, on_segment: Callable[[int], None] | None):
        self.on_segment = on_segment

    def unit_done(self, device: str, row: ProfileRow, measured: bool) -> None:
        if self.on_segment is not None:
            self.on_segment(int(row.segment))


def ensure_mobile_profile(
    device: Device,
    bundle_dir: Path,
    root: Path,
    *,
    runs: int = 10,
    on_segment: Callable[[int], None] | None = None,
) -> Path:
    """Profile the segments of ``bundle_dir`` that the device's profile CSV lacks; return the CSV.

    The profiling job (:func:`harness.profiling.profile_device`) skips rows already measured for the
    same artifacts, so this is cheap when the profile exists and resumes when it was interrupted.
    """
    settings = ProfileSettings(runs=runs, backward=False, warmup_min_secs=0.1)
    result = profile_device(
        device,
        Path(bundle_dir),
        settings,
        out_root=Path(root) / DEFAULT_OUT_ROOT,
        listener=_Listener(on_segment),
        resume_hint="the same `jointdnn run` command",
    )
    return result.csv_path


def cloud_profile_rows(raw: list[dict[str, Any]], manifest: BundleManifest) -> list[ProfileRow]:
    """Profile rows from the server's ``/profile`` answer (unknown keys dropped, ``in_bytes`` filled)."""
    names = {f.name for f in fields(ProfileRow)}
    rows = []
    for item in raw:
        row = ProfileRow(**{k: v for k, v in item.items() if k in names})
        if 0 <= row.segment < manifest.num_segments and not row.in_bytes:
            row.in_bytes = manifest.segments[row.segment].input.nbytes
        rows.append(row)
    if not any(r.segment >= 0 for r in rows):
        raise ProfileError("the server's /profile answer has no segment rows")
    return rows


def write_rows(path: Path, rows: list[ProfileRow]) -> Path:
    """Write rows to a fresh profile CSV (replacing any)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    append_rows(path, rows)
    assert list(read_profile(path).columns)[: len(COLUMNS)] == COLUMNS
    return path


def _whole_over_segments(frame: pd.DataFrame, column: str) -> float:
    """whole-model value / sum of the segments' values of ``column`` (1.0 when unknown or below 1)."""
    whole = frame[frame["segment"] == WHOLE_MODEL_SEGMENT]
    total = float(pd.to_numeric(segment_rows(frame)[column], errors="coerce").sum())
    if whole.empty or not total > 0:
        return 1.0
    factor = float(pd.to_numeric(whole[column], errors="coerce").iloc[-1]) / total
    return factor if math.isfinite(factor) and factor > 1.0 else 1.0


def planning_profile(frame: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """The profile the planner should use, and the latency factor applied (whole model / sum of segments).

    Each segment is benchmarked alone, over and over, so its weights and activations stay in the
    caches; run back to back in a chain they do not, and the chain takes longer than the sum of its
    parts (the profiling job records the whole model, segment -1, to show exactly that). When the
    whole model is slower than the sum, segment latencies are scaled by the ratio so that mobile-only
    (and cloud-only) predictions match the measured whole model; energies likewise by their own ratio
    (per-inference energy of a tiny segment also carries the benchmark loop's overhead, so the two
    ratios differ). When the whole model is faster (fusion across boundaries that a chain cannot
    have) nothing is changed. Factor 1.0 = unchanged.
    """
    latency_factor = _whole_over_segments(frame, "latency_ms_median")
    energy_factor = _whole_over_segments(frame, "energy_mj")
    if latency_factor == 1.0 and energy_factor == 1.0:
        return frame, 1.0
    scaled = frame.copy()
    rows = scaled["segment"] >= 0
    for column, factor in (
        ("latency_ms_median", latency_factor),
        ("latency_ms_p10", latency_factor),
        ("latency_ms_p90", latency_factor),
        ("energy_mj", energy_factor),
    ):
        scaled.loc[rows, column] = pd.to_numeric(scaled.loc[rows, column], errors="coerce") * factor
    return scaled, latency_factor
