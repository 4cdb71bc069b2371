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
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from models.errors import ProfileError

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "WHOLE_MODEL_SEGMENT",
    "ProfileRow",
    "append_rows",
    "read_profile",
    "segment_rows",
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


COLUMNS: list[str] = [f.name for f in fields(ProfileRow)]
REQUIRED_COLUMNS: list[str] = COLUMNS[:16]


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
            frame[column] = math.nan if column.startswith("backward") else 0
    return frame


def segment_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-segment rows, latest measurement per segment, ordered by segment index."""
    segments = frame[frame["segment"] >= 0]
    return segments.drop_duplicates("segment", keep="last").sort_values("segment").reset_index(drop=True)


def whole_model_row(frame: pd.DataFrame) -> pd.Series | None:
    """The latest whole-model row, if the profile has one."""
    whole = frame[frame["segment"] == WHOLE_MODEL_SEGMENT]
    return None if whole.empty else whole.iloc[-1]
