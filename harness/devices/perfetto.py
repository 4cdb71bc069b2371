"""Energy from Perfetto: battery counters and power rails recorded on the phone, read on the host.

Phones with a power-stats HAL (Pixel 6 and later, many recent SoCs) expose *power rails*: cumulative
energy counters per subsystem (CPU big/mid/little, GPU, DDR, ...) in µWs, far more precise than sampling
the fuel gauge over adb. Perfetto's ``android.power`` data source records them, with the battery counters
(current, voltage, charge, energy), into a trace:

1. :data:`POWER_CONFIG` (text proto) is pushed once and piped into
   ``perfetto --background --txt -c - -o /data/misc/perfetto-traces/jointdnn.pftrace`` (Android 12+ lets
   perfetto read configs only from stdin or its own folder; ``--background`` prints the pid and returns);
2. the unit runs, bracketed by ``cat /proc/uptime`` (CLOCK_BOOTTIME, the trace's default clock) so the
   run window is known in trace time; the idle lead-in before it gives the baseline;
3. ``kill <pid>`` makes perfetto flush and write the trace, which is pulled and parsed.

Reading the trace: the ``perfetto`` package's TraceProcessor needs a ``trace_processor_shell`` binary
that it downloads on first use, which is impossible offline (checked: it fails with "Could not resolve
host"). The trace is therefore parsed with the protobuf classes the same package ships
(``perfetto.protos.perfetto.trace.perfetto_trace_pb2``): the packet fields ``battery`` and
``power_rails`` are all this module needs. Units and sign follow :mod:`harness.devices.battery`'s rule.

The emulated device has a ``perfetto`` that records its battery model this way
(:mod:`harness.emulator.perfetto_tool`), so the capture path is tested end to end; a real phone's is not.

Which source measured a row is recorded: ``perfetto-rails`` (sum of every rail: SoC energy, not the
screen or radio) or ``perfetto-battery`` (battery counters: the whole phone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from harness.devices.battery import CurrentUnit, SignConvention, discharge_factor

if TYPE_CHECKING:
    from harness.devices.adb import AdbDevice

__all__ = [
    "POWER_CONFIG",
    "TRACE_PATH",
    "Capture",
    "PowerTrace",
    "WindowEnergy",
    "capture_power_trace",
    "parse_power_trace",
    "window_excess_mw",
]

log = logging.getLogger(__name__)

TRACE_PATH = "/data/misc/perfetto-traces/jointdnn-power.pftrace"
CONFIG_PATH = "/data/local/tmp/jointdnn/power.pbtx"
BATTERY_POLL_MS = 100  # the android.power data source's fastest poll
POWER_CONFIG = f"""\
buffers {{ size_kb: 16384 fill_policy: RING_BUFFER }}
data_sources {{
  config {{
    name: "android.power"
    android_power_config {{
      battery_poll_ms: {BATTERY_POLL_MS}
      battery_counters: BATTERY_COUNTER_CURRENT
      battery_counters: BATTERY_COUNTER_VOLTAGE
      battery_counters: BATTERY_COUNTER_CHARGE
      collect_power_rails: true
    }}
  }}
}}
duration_ms: 600000
"""


@dataclass
class PowerTrace:
    """What a trace holds: rail energy counters and battery counter samples, times in trace ns."""

    rails: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # name -> [(ns, µWs cumulative)]
    battery: list[tuple[int, float, float]] = field(default_factory=list)  # [(ns, raw current, µV)]

    @property
    def has_rails(self) -> bool:
        return any(len(samples) >= 2 for samples in self.rails.values())


def parse_power_trace(data: bytes) -> PowerTrace:
    """Rails and battery counters from a serialized Perfetto trace (protobuf ``Trace``)."""
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    trace = Trace()
    trace.ParseFromString(data)
    names: dict[int, str] = {}
    energy: list[tuple[int, int, float]] = []  # (index, ns, µWs)
    out = PowerTrace()
    for packet in trace.packet:
        if packet.HasField("power_rails"):
            for rail in packet.power_rails.rail_descriptor:
                names[rail.index] = rail.rail_name or f"rail{rail.index}"
            for sample in packet.power_rails.energy_data:
                ns = sample.timestamp_ms * 1_000_000 if sample.timestamp_ms else packet.timestamp
                energy.append((sample.index, ns, float(sample.energy)))
        if packet.HasField("battery") and packet.battery.HasField("current_ua"):
            out.battery.append(
                (packet.timestamp, float(packet.battery.current_ua), float(packet.battery.voltage_uv))
            )
    for index, ns, uws in sorted(energy, key=lambda item: item[1]):
        out.rails.setdefault(names.get(index, f"rail{index}"), []).append((ns, uws))
    out.battery.sort()
    return out


@dataclass(frozen=True)
class WindowEnergy:
    """Power above the idle baseline over a run window, and which Perfetto source gave it."""

    excess_mw: float
    idle_mw: float
    source: str  # "perfetto-rails" | "perfetto-battery"


def _rail_power_mw(samples: list[tuple[int, float]], start_ns: int, end_ns: int) -> float:
    """Mean power of one cumulative rail between two instants (linear interpolation; µWs/ns → mW)."""
    times = np.array([ns for ns, _ in samples], dtype=np.float64)
    values = np.array([uws for _, uws in samples], dtype=np.float64)
    used_uws = float(np.interp(end_ns, times, values) - np.interp(start_ns, times, values))
    return used_uws / ((end_ns - start_ns) / 1e9) / 1e3  # µWs / s = µW; / 1e3 = mW


def window_excess_mw(
    trace: PowerTrace,
    idle: tuple[int, int],
    run: tuple[int, int],
    *,
    unit: CurrentUnit = "auto",
    convention: SignConvention = "auto",
) -> WindowEnergy | None:
    """Power above idle during ``run`` (trace ns), with ``idle`` as the baseline; rails preferred.

    Battery counters: raw currents become discharge µA by :func:`~harness.devices.battery.discharge_factor`
    with the idle samples as the discharging reference. None when neither source covers both windows.
    """
    if trace.has_rails and all(
        samples[0][0] <= idle[0] and samples[-1][0] >= run[1] for samples in trace.rails.values()
    ):
        idle_mw = sum(_rail_power_mw(s, *idle) for s in trace.rails.values())
        run_mw = sum(_rail_power_mw(s, *run) for s in trace.rails.values())
        return WindowEnergy(run_mw - idle_mw, idle_mw, "perfetto-rails")
    idle_samples = [(c, v) for ns, c, v in trace.battery if idle[0] <= ns <= idle[1]]
    run_samples = [(c, v) for ns, c, v in trace.battery if run[0] <= ns <= run[1]]
    if len(idle_samples) < 2 or len(run_samples) < 2:
        return None
    factor = discharge_factor([c for c, _ in idle_samples], unit=unit, convention=convention)

    def mean_mw(samples: list[tuple[float, float]]) -> float:
        return float(np.mean([factor * c * v / 1e9 for c, v in samples]))  # µA · µV = 1e-9 mW

    idle_mw = mean_mw(idle_samples)
    return WindowEnergy(mean_mw(run_samples) - idle_mw, idle_mw, "perfetto-battery")


def _uptime_ns(device: AdbDevice) -> int:
    """The device's CLOCK_BOOTTIME (``/proc/uptime``, 10 ms resolution) in ns."""
    text = device.shell(["cat", "/proc/uptime"], check=True).stdout.split()
    return round(float(text[0]) * 1e9)


@dataclass
class Capture:
    """Filled by :func:`capture_power_trace`: the run window in trace time and the parsed trace.

    ``started`` False (perfetto missing or refused): the block should not run the unit at all.
    """

    started: bool = False
    idle: tuple[int, int] = (0, 0)
    run: tuple[int, int] = (0, 0)
    trace: PowerTrace | None = None
    error: str = ""


@contextmanager
def capture_power_trace(
    device: AdbDevice, *, idle_s: float = 0.5, sleep: Callable[[float], object] = time.sleep
) -> Iterator[Capture]:
    """Record battery counters and power rails around the block; the trace is parsed on exit.

    The block is the run window; ``idle_s`` of idle before it is the baseline. A device without
    ``perfetto`` leaves ``started`` False; one whose trace has no power data leaves ``trace`` None; both
    say why in ``error``.
    """
    capture = Capture()
    device.push_file(POWER_CONFIG.encode(), CONFIG_PATH)
    started = device.shell(
        ["sh", "-c", f"cat {CONFIG_PATH} | perfetto --background --txt -c - -o {TRACE_PATH}"]
    )
    pid = started.stdout.strip().splitlines()[-1] if started.stdout.strip() else ""
    if started.exit_code != 0 or not pid.isdigit():
        capture.error = f"perfetto did not start: {(started.stderr or started.stdout).strip()[-200:]}"
        yield capture
        return
    capture.started = True
    try:
        idle_start = _uptime_ns(device)
        sleep(idle_s)
        run_start = _uptime_ns(device)
        yield capture
        run_end = _uptime_ns(device)
        capture.idle, capture.run = (idle_start, run_start), (run_start, run_end)
    finally:
        device.shell(["kill", pid])
        for _ in range(50):  # perfetto flushes and exits after SIGTERM
            if device.shell(["kill", "-0", pid]).exit_code != 0:
                break
            sleep(0.1)
    try:
        capture.trace = parse_power_trace(device.pull_bytes(TRACE_PATH))
    except Exception as exc:  # a truncated or missing trace: report, fall back to sysfs sampling
        capture.error = f"cannot read the perfetto trace: {exc}"
    finally:
        device.shell(["rm", "-f", TRACE_PATH])
    if capture.trace is not None and not capture.trace.has_rails and len(capture.trace.battery) < 4:
        capture.error = "the perfetto trace holds no power rails and too few battery counters"
        capture.trace = None
