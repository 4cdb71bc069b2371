"""A schedule as the stages that execute it: maximal runs of consecutive segments on one side.

``["mobile", "mobile", "cloud", "cloud", "mobile"]`` becomes ``mobile[0, 2)``, ``cloud[2, 4)``,
``mobile[4, 5)``: each stage is one call (a chain-runner invocation on the device, or one HTTP request
to the server), and every change of side is one transfer over the link. The input starts on the mobile
and the result must end there, so a schedule whose last stage is on the cloud downloads the result.

A label may end in :data:`JPEG_SUFFIX` (``CCCC+jpeg``): the same schedule with the input uploaded as
the JPEG of the photo instead of the raw tensor (only for schedules that start on the cloud; see
:mod:`harness.planner.input_codec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from models.errors import UsageError

__all__ = [
    "JPEG_SUFFIX",
    "Side",
    "Stage",
    "input_codec",
    "schedule_label",
    "split_stages",
    "stages_from_label",
]

Side = Literal["mobile", "cloud"]
JPEG_SUFFIX = "+jpeg"  # label suffix: the input crosses the uplink as a JPEG


@dataclass(frozen=True)
class Stage:
    """Segments ``start .. stop-1`` on one side."""

    side: Side
    start: int
    stop: int

    @property
    def indices(self) -> list[int]:
        return list(range(self.start, self.stop))


def split_stages(locations: Sequence[str]) -> list[Stage]:
    """Maximal same-side runs of a schedule (``mobile``/``cloud`` per segment), in order."""
    if not locations:
        raise UsageError("a schedule needs at least one segment")
    stages: list[Stage] = []
    start = 0
    for k in range(1, len(locations) + 1):
        if k == len(locations) or locations[k] != locations[start]:
            side = locations[start]
            if side not in ("mobile", "cloud"):
                raise UsageError(f"segment {start} has location {side!r}; expected mobile or cloud")
            stages.append(Stage(side, start, k))  # type: ignore[arg-type]
            start = k
    return stages


def schedule_label(locations: Sequence[str]) -> str:
    """One letter per segment, ``M`` (mobile) or ``C`` (cloud): ``MMCCM`` (the planner's Plan.label)."""
    return "".join("C" if loc == "cloud" else "M" for loc in locations)


def input_codec(label: str) -> Literal["raw", "jpeg"]:
    """How a schedule label uploads the model input: ``jpeg`` for ``C...+jpeg``, else ``raw``."""
    return "jpeg" if label.endswith(JPEG_SUFFIX) else "raw"


def stages_from_label(label: str) -> list[Side]:
    """The locations of a label such as ``MMCC`` (or ``CCMM+jpeg``)."""
    mapping: dict[str, Side] = {"M": "mobile", "C": "cloud"}
    letters = label.removesuffix(JPEG_SUFFIX)
    if letters != label and not letters.startswith("C"):
        raise UsageError(f"schedule {label!r}: only a schedule that starts on the cloud uploads a JPEG")
    try:
        return [mapping[ch] for ch in letters]
    except KeyError:
        raise UsageError(f"schedule label {label!r} must use only M and C") from None
