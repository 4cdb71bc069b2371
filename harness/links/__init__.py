"""Emulated wireless links: real traffic shaping (namespaces, veth, tc) or client pacing, and measuring it.

:mod:`harness.links.radio` (transfer time and radio energy) is pure numpy and imported by the planner,
so this package imports its shaping and measuring modules lazily, on first use of their names: importing
``harness.links.radio`` does not start the shaping machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.links.measure import LinkMeasurement, measure_link
    from harness.links.shaping import ShapedLink, ShapingMode, ShapingRequest

__all__ = ["LinkMeasurement", "ShapedLink", "ShapingMode", "ShapingRequest", "measure_link"]

_HOMES = {
    "LinkMeasurement": "harness.links.measure",
    "measure_link": "harness.links.measure",
    "ShapedLink": "harness.links.shaping",
    "ShapingMode": "harness.links.shaping",
    "ShapingRequest": "harness.links.shaping",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
