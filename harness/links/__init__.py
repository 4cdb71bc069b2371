"""Emulated wireless links: real traffic shaping (namespaces, veth, tc) or client pacing, and measuring it."""

from __future__ import annotations

from harness.links.measure import LinkMeasurement, measure_link
from harness.links.shaping import ShapedLink, ShapingMode, ShapingRequest

__all__ = ["LinkMeasurement", "ShapedLink", "ShapingMode", "ShapingRequest", "measure_link"]
