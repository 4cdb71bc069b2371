"""Per-segment profile rows: the CSV that profiling jobs write and the planner reads.

One row per segment (``segment`` = 0..n-1) and optionally one row for the whole model (``segment`` =
-1, ``first_layer`` = ``<whole>``), so the sum(segments)/whole ratio can be reported. Columns carry
their units. Training plans also need ``backward_ms`` / ``backward_energy_mj`` (gradient of the
segment) and ``param_bytes`` (weights to download when cloud-trained weights come back); they are
empty (NaN) in inference-only profiles.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from models.benchmark import BenchmarkStats
from models.bundle import BundleManifest
from models.errors import ProfileError

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "WHOLE_MODEL_SEGMENT",
    "ProfileRow",
    "Unit",
    "append_rows",
    "measured_row",
    "read_profile",
    "segment_rows",
    "units_of",
    "whole_model_row",
]

WHOLE_MODEL_SEGMENT = -1


@dataclass
class ProfileRow:
    """One measured segment on one device (or server). Units in the field names."""

    model: str
    quant: str
    segment: int  # 0..n-1, or -1 for the whole model
    first_layer: str
    last_layer: str
    out_bytes: int  # bytes of the segment's output tensor (what crosses the network after it)
    latency_ms_median: float
    latency_ms_p10: float
    latency_ms_p90: float
    runs: int
    energy_mj: float  # energy above idle per inference; NaN when not measured
    power_mw: float  # average power above idle while computing; NaN when not measured
    threads: int
    device: str
    runtime: str  # e.g. "litert", "benchmark_model"
    timestamp: str  # ISO 8601, UTC
    artifact_sha256: str = ""  # hash of the .tflite that was measured (resume key)
    in_bytes: int = 0  # bytes of the segment's input tensor
    backward_ms: float = math.nan  # gradient of the segment (training)
    backward_energy_mj: float = math.nan
    param_bytes: int = 0  # bytes of the segment's trainable weights (float32)
    # In chain context (issue #12): the segment timed once per pass of the whole chain, as it runs when
    # a schedule executes (cold-ish weights, after its predecessor; the serving path on the server),
    # median over passes; NaN in profiles measured before. The planner prefers it to latency_ms_median.
    chain_ms_median: float = math.nan
    chain_energy_mj: float = math.nan  # energy above idle of the segment in those passes
    # Fixed cost (ms) of one invocation (a mobile stage / a cloud request) that starts at this segment,
    # beyond the chain times of its segments; NaN when not measured (counted as 0).
    overhead_ms: float = math.nan
    overhead_method: str = ""  # how chain_ms_median and overhead_ms were measured, in words
    # How the row was measured and the device state around it (harness.devices.telemetry); empty / NaN
    # where the device cannot say. "big" = the CPU cluster with the highest hardware maximum frequency.
    energy_source: str = ""  # battery | power-model | "" (no valid energy: none, or charging)
    cpu_governor: str = ""  # "schedutil", or per cluster "0-3:schedutil;4-7:performance"
    cpu_freq_khz: str = ""  # per cluster "CPUs:min/cur/max" (kHz) after the unit, ";"-separated
    big_cpu_max_khz_start: float = math.nan  # big cluster's scaling_max_freq before the unit (kHz)
    big_cpu_max_khz_end: float = math.nan  # ... after it (below big_cpu_hw_max_khz: thermally capped)
    big_cpu_hw_max_khz: float = math.nan  # big cluster's cpuinfo_max_freq (kHz)
    temp_c_start: float = math.nan  # hottest thermal zone before the unit (°C)
    temp_c_end: float = math.nan  # ... after it (°C)
    thermal_zones_c: str = ""  # every zone after the unit, "type:°C;..."
    battery_status: str = ""  # sysfs status after the unit (Charging, Discharging, Full, Not charging)
    charging: bool = False  # a charger fed the battery: battery energy is invalid (NaN)
    throttled: bool = False  # the big cluster's frequency cap was below its maximum, or changed
    state_notes: str = ""  # what changed during the unit, "; "-separated (the warnings)
    cooldown_s: float = 0.0  # seconds the cooldown gate waited before the unit
    taskset_mask: str = ""  # CPU affinity mask (hex) the runner was pinned to
    runner_binary: str = ""  # identity of the runner binary ("sha256:<16 hex>") or the interpreter
    runner_command: str = ""  # the runner's command line (benchmark_model flags)


COLUMNS: list[str] = [f.name for f in fields(ProfileRow)]
# every profile has these; the ones with a default were added later and are filled in when missing
REQUIRED_COLUMNS: list[str] = [
    f.name for f in fields(ProfileRow) if f.default is MISSING and f.default_factory is MISSING
]


# a column missing from an older CSV is filled with its field's default (NaN, "", 0, False)
_FILL = {f.name: f.default for f in fields(ProfileRow) if f.default is not MISSING}


@dataclass(frozen=True)
class Unit:
    """One thing to benchmark: a segment (index >= 0) or the whole model (index -1)."""

    index: int
    file: str
    sha256: str
    first_layer: str
    last_layer: str
    in_bytes: int
    out_bytes: int
    param_bytes: int  # float32 trainable weights


def units_of(manifest: BundleManifest, *, whole_model: bool = True) -> list[Unit]:
    """Every segment of the bundle in order, then the whole model if the bundle has one."""
    units = [
        Unit(
            index=seg.index,
            file=seg.file,
            sha256=seg.sha256,
            first_layer=seg.first_layer,
            last_layer=seg.last_layer,
            in_bytes=seg.input.nbytes,
            out_bytes=seg.out_bytes,
            param_bytes=seg.params * 4,
        )
        for seg in manifest.segments
    ]
    if whole_model and manifest.whole_file:
        first, last = manifest.segments[0], manifest.segments[-1]
        units.append(
            Unit(
                index=WHOLE_MODEL_SEGMENT,
                file=manifest.whole_file,
                sha256=manifest.whole_sha256 or "",
                first_layer="<whole>",
                last_layer=last.last_layer,
                in_bytes=first.input.nbytes,
                out_bytes=last.out_bytes,
                param_bytes=sum(seg.params for seg in manifest.segments) * 4,
            )
        )
    return units


def measured_row(
    manifest: BundleManifest, unit: Unit, stats: BenchmarkStats, *, threads: int, device: str, runtime: str
) -> ProfileRow:
    """The row of one measured unit (timestamped now); energy as the stats carry it (NaN if none)."""
    return ProfileRow(
        model=manifest.model,
        quant=manifest.quant,
        segment=unit.index,
        first_layer=unit.first_layer,
        last_layer=unit.last_layer,
        out_bytes=unit.out_bytes,
        latency_ms_median=stats.median_ms,
        latency_ms_p10=stats.p10_ms,
        latency_ms_p90=stats.p90_ms,
        runs=stats.count,
        energy_mj=stats.energy_mj,
        power_mw=stats.power_mw,
        threads=threads,
        device=device,
        runtime=runtime,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        artifact_sha256=unit.sha256,
        in_bytes=unit.in_bytes,
        param_bytes=unit.param_bytes,
    )


def append_rows(path: Path, rows: list[ProfileRow]) -> None:
    """Append rows to a profile CSV atomically: write old + new to a temp file, fsync, rename.

    A crash at any point leaves either the old file or the new one, never a torn row.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    if not old:
        writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        handle.write(old + buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def read_profile(path: Path) -> pd.DataFrame:
    """Read and validate a profile CSV (all rows, whole-model row included)."""
    path = Path(path)
    if path.is_dir():
        found = ", ".join(sorted(p.name for p in path.glob("*.csv"))[:5]) or "none"
        raise ProfileError(f"profile {path} is a directory; give one of its profile CSVs ({found})")
    if not path.is_file():
        raise ProfileError(f"profile {path} does not exist (measure it with `jointdnn profile`)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path} is not a readable CSV: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ProfileError(f"profile {path} lacks columns {', '.join(missing)}")
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = _FILL[column]  # required columns were checked above
        elif isinstance(_FILL.get(column), str):
            frame[column] = frame[column].fillna(_FILL[column]).astype(str)
    return frame


def segment_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-segment rows, latest measurement per segment, ordered by segment index."""
    segments = frame[frame["segment"] >= 0]
    return segments.drop_duplicates("segment", keep="last").sort_values("segment").reset_index(drop=True)


def whole_model_row(frame: pd.DataFrame) -> pd.Series | None:
    """The latest whole-model row, if the profile has one."""
    whole = frame[frame["segment"] == WHOLE_MODEL_SEGMENT]
    return None if whole.empty else whole.iloc[-1]
