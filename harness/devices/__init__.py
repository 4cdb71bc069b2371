"""Devices that hold a bundle and time its segments: in-process (local) and ADB (phones, emulators).

See :mod:`harness.devices.base` for the protocol every device follows.
"""

from __future__ import annotations

from harness.devices.base import BenchmarkStats, ChainRun, Device, DeviceFacts, PushResult, device_slug
from harness.devices.benchmark_output import parse_benchmark_output, parse_stat_line, parse_summary_line

__all__ = [
    "BenchmarkStats",
    "ChainRun",
    "Device",
    "DeviceFacts",
    "PushResult",
    "device_slug",
    "parse_benchmark_output",
    "parse_stat_line",
    "parse_summary_line",
]
