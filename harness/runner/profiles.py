"""Make sure a run has the per-segment profiles the planner needs, measuring what is missing.

Mobile profiles live at ``device_profiles/measured/<device>/<model>-<quant>.csv`` (the profiling job's
place) and are reused while their ``artifact_sha256`` match the bundle's segments; missing or stale
segments are measured and appended one segment at a time (atomic appends), so an interrupted run
resumes where it stopped. The profiling job of :mod:`harness.profiling` does the measuring when it is
available; otherwise each segment is timed alone through the device's chain runner (warm-up + runs).

The cloud profile comes from the server's ``/profile`` endpoint (it times its own interpreters) and is
written into the run directory.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ProfileError
from harness.profile_rows import COLUMNS, ProfileRow, append_rows, read_profile
from harness.runner.execute import ChainDevice
from models.bundle import BundleManifest, TensorSpec

__all__ = ["cloud_profile_rows", "ensure_mobile_profile", "mobile_profile_path", "write_rows"]


def mobile_profile_path(root: Path, device_name: str, model: str, quant: str) -> Path:
    """``<root>/device_profiles/measured/<device>/<model>-<quant>.csv``."""
    return Path(root) / "device_profiles" / "measured" / device_name / f"{model}-{quant}.csv"


def _missing_segments(path: Path, manifest: BundleManifest) -> list[int]:
    if not path.is_file():
        return [s.index for s in manifest.segments]
    try:
        frame = read_profile(path)
    except ProfileError:
        path.unlink()  # unreadable: measure again from scratch
        return [s.index for s in manifest.segments]
    have = set(zip(frame["segment"].astype(int), frame["artifact_sha256"].astype(str), strict=True))
    return [s.index for s in manifest.segments if (s.index, s.sha256) not in have]


def _random_input(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(spec.dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=spec.shape, endpoint=True).astype(dtype)
    return rng.random(spec.shape, dtype=np.float32).astype(dtype)


def ensure_mobile_profile(
    device: ChainDevice,
    device_name: str,
    bundle_dir: Path,
    manifest: BundleManifest,
    path: Path,
    *,
    runs: int = 10,
    model: str | None = None,
    on_segment: Callable[[int], None] | None = None,
) -> Path:
    """Measure every segment of ``manifest`` missing from the profile at ``path``; return ``path``."""
    missing = _missing_segments(path, manifest)
    rng = np.random.default_rng(0)
    model_name = model or manifest.model
    for index in missing:
        seg = manifest.segments[index]
        x = _random_input(seg.input, rng)
        times: list[float] = []
        energies: list[float] = []
        for attempt in range(runs + 1):
            run = device.run_chain(Path(bundle_dir), [index], x)
            if attempt == 0:
                continue  # warm-up: first inference of a fresh interpreter
            times.append(float(run[1][0]))
            energies.append(float(run[2]))
        median_ms = statistics.median(times)
        energy = statistics.median(energies) if all(math.isfinite(e) for e in energies) else math.nan
        row = ProfileRow(
            model=model_name,
            quant=manifest.quant,
            segment=index,
            first_layer=seg.first_layer,
            last_layer=seg.last_layer,
            out_bytes=seg.out_bytes,
            latency_ms_median=median_ms,
            latency_ms_p10=float(np.quantile(times, 0.1)),
            latency_ms_p90=float(np.quantile(times, 0.9)),
            runs=runs,
            energy_mj=energy,
            power_mw=energy / median_ms * 1e3 if math.isfinite(energy) and median_ms > 0 else math.nan,
            threads=1,
            device=device_name,
            runtime="jointdnn_chain_runner",
            timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
            artifact_sha256=seg.sha256,
            in_bytes=seg.input.nbytes,
        )
        append_rows(path, [row])
        if on_segment is not None:
            on_segment(index)
    return path


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
