"""Devices that hold a bundle and time its segments: in-process (local) and ADB (phones, emulators).

See :mod:`harness.devices.base` for the protocol every device follows.
"""

from __future__ import annotations

from harness.devices.adb import AdbDevice, RetryPolicy, list_serials
from harness.devices.base import (
    BenchmarkSettings,
    BenchmarkStats,
    ChainRun,
    Device,
    DeviceCapabilities,
    DeviceFacts,
    PushResult,
    device_slug,
)
from harness.devices.benchmark_output import parse_benchmark_output, parse_stat_line, parse_summary_line
from harness.devices.local import LocalDevice

__all__ = [
    "AdbDevice",
    "BenchmarkSettings",
    "BenchmarkStats",
    "ChainRun",
    "Device",
    "DeviceCapabilities",
    "DeviceFacts",
    "LocalDevice",
    "PushResult",
    "RetryPolicy",
    "device_slug",
    "list_serials",
    "parse_benchmark_output",
    "parse_stat_line",
    "parse_summary_line",
]
