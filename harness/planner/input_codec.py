"""The JPEG-coded model input: a schedule whose first segment runs in the cloud may upload the photo.

A real app that offloads uploads the photo as a JPEG, not the raw input tensor (a 224x224 photo is
~15 KB at quality 90 vs 150 KB as int8). For such a schedule two things change, both measured before
planning and never fitted on the run's executions: the uplink carries the JPEG's encoded size
(``jpeg_bytes``, the bytes of the run's own encoded input) instead of the tensor, and the server first
decodes the JPEG (``decode_ms``, timed by the server on that JPEG during profiling), which counts as
cloud compute of segment 0. :func:`jpeg_problem` is the same problem with those two inputs replaced;
schedules whose first segment runs on the mobile cost exactly the same in both problems, so the best
schedule over both input codecs is the better of the two problems' optima.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from harness.planner.costs import PlanningProblem
from models.errors import ProfileError

__all__ = ["JpegInput", "jpeg_problem"]


@dataclass(frozen=True)
class JpegInput:
    """What the JPEG variant of the input costs: its size on the wire and the server's decode time."""

    jpeg_bytes: float  # encoded size of the run's input photo (bytes)
    decode_ms: float  # server time to decode it into the input tensor (ms, median of a profile)
    quality: int = 90  # JPEG quality it was encoded at

    def __post_init__(self) -> None:
        for name in ("jpeg_bytes", "decode_ms"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise ProfileError(f"JPEG input {name} must be a non-negative number, got {value}")


def jpeg_problem(problem: PlanningProblem, jpeg: JpegInput) -> PlanningProblem:
    """``problem`` with the input uploaded as ``jpeg``: input bytes = JPEG size, decode on segment 0."""
    seg = problem.segments
    cloud_ms = seg.cloud_ms.copy()
    cloud_ms[0] += jpeg.decode_ms  # the server decodes before segment 0 runs
    segments = replace(seg, input_bytes=jpeg.jpeg_bytes, cloud_ms=cloud_ms)
    return replace(problem, segments=segments, extra={**problem.extra, "input_codec": "jpeg"})
