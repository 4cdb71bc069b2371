"""Device state that makes a phone timing trustworthy: CPU clocks, temperatures, charging.

Mobile benchmarkers' first question about a number is "was it throttling?". A :class:`DeviceState`
snapshot holds, per CPU cluster, the governor and the current / minimum / maximum frequency (kHz) with
the hardware maximum (``cpuinfo_max_freq``: a ``scaling_max_freq`` below it is a thermal cap), every
thermal zone's temperature (°C), the battery status and whether a charger is online.

One snapshot is ONE adb shell command: ``grep '' FILES...`` prints ``path:value`` for every readable
sysfs file (globs expanded by the device's shell; unreadable or missing files are skipped, as some
thermal zones refuse reads), so a snapshot costs one round trip (~10-30 ms), cheap enough to take before
and after every profiled unit. :func:`parse_state` is a pure function of that output.

Units: cpufreq files are kHz. Thermal zone ``temp`` is millidegrees °C on almost every kernel; a value
below 1000 in magnitude is taken as whole degrees (some vendor zones), one above 200 °C after scaling is
dropped as a sensor error. Clusters are CPUs with the same ``related_cpus`` (else the same
``cpuinfo_max_freq``); the *big* cluster is the one with the highest hardware maximum.

A unit is reported as throttled (:func:`state_changes`) when the big cluster's frequency cap
(``scaling_max_freq``) is below its hardware maximum at either end, or changed during the unit; a
temperature rise of :data:`TEMP_RISE_WARN_C` or more over one unit is reported too. Charging or a charger
online makes battery energy readings invalid (:attr:`DeviceState.charging`).
"""

from __future__ import annotations

import glob
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "STATE_COMMAND",
    "TEMP_RISE_WARN_C",
    "ClusterState",
    "CooldownResult",
    "DeviceState",
    "cool_down",
    "parse_state",
    "read_local_state",
    "state_changes",
]

log = logging.getLogger(__name__)

_CPUFREQ_FILES = (
    "scaling_governor",
    "scaling_cur_freq",
    "scaling_min_freq",
    "scaling_max_freq",
    "cpuinfo_max_freq",
    "related_cpus",
)
_CPU_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq"
# One shell command for a whole snapshot (a constant: no user input in it).
STATE_COMMAND = (
    "grep '' "
    + " ".join(f"{_CPU_GLOB}/{name}" for name in _CPUFREQ_FILES)
    + " /sys/class/thermal/thermal_zone*/type /sys/class/thermal/thermal_zone*/temp"
    + " /sys/class/power_supply/battery/status /sys/class/power_supply/*/online 2>/dev/null"
)
TEMP_RISE_WARN_C = 5.0  # a unit that warms the hottest zone by this much (°C) is reported
_CPU_PATH = re.compile(r"^/sys/devices/system/cpu/cpu(\d+)/cpufreq/(\w+)$")
_ZONE_PATH = re.compile(r"^/sys/class/thermal/thermal_zone(\d+)/(type|temp)$")
_SUPPLY_ONLINE = re.compile(r"^/sys/class/power_supply/([^/]+)/online$")


@dataclass(frozen=True)
class ClusterState:
    """One CPU cluster: its CPUs, governor and frequencies (kHz; 0 when the kernel did not say)."""

    cpus: tuple[int, ...]
    governor: str
    cur_khz: int
    min_khz: int
    max_khz: int  # scaling_max_freq: the cap the governor may use (thermal limits lower it)
    hw_max_khz: int  # cpuinfo_max_freq

    @property
    def label(self) -> str:
        """``4-7`` (a contiguous range) or ``0,2,5``."""
        cpus = self.cpus
        if cpus and list(cpus) == list(range(cpus[0], cpus[-1] + 1)) and len(cpus) > 1:
            return f"{cpus[0]}-{cpus[-1]}"
        return ",".join(map(str, cpus))

    @property
    def capped(self) -> bool:
        """The frequency cap is below the hardware maximum (a thermal or power limit is active)."""
        return 0 < self.max_khz < self.hw_max_khz


@dataclass(frozen=True)
class DeviceState:
    """One snapshot of a device's clocks, temperatures and power supply."""

    t_s: float  # host monotonic time of the snapshot (s)
    clusters: tuple[ClusterState, ...] = ()
    zones: tuple[tuple[str, float], ...] = ()  # (thermal zone type, °C)
    battery_status: str = ""  # sysfs words: Charging, Discharging, Full, Not charging; "" = unknown
    chargers_online: tuple[str, ...] = field(default=())  # power supplies with online=1 (usb, ac, ...)

    @property
    def big(self) -> ClusterState | None:
        """The cluster with the highest hardware maximum frequency (where inference threads land)."""
        return max(self.clusters, key=lambda c: (c.hw_max_khz, c.cpus), default=None)

    @property
    def hottest_c(self) -> float:
        """The hottest thermal zone (°C); NaN without zones."""
        return max((temp for _, temp in self.zones), default=math.nan)

    @property
    def charging(self) -> bool:
        """A charger feeds the battery: battery energy readings are invalid."""
        return self.battery_status in ("Charging", "Full") or bool(self.chargers_online)

    def governor_text(self) -> str:
        """``schedutil`` when every cluster agrees, else ``0-3:schedutil;4-7:performance``."""
        governors = {c.governor for c in self.clusters}
        if len(governors) <= 1:
            return next(iter(governors), "")
        return ";".join(f"{c.label}:{c.governor}" for c in self.clusters)

    def freq_text(self) -> str:
        """``0-3:300000/300000/1800000;4-7:500000/2400000/2400000`` (CPUs:min/cur/max kHz per cluster)."""
        return ";".join(f"{c.label}:{c.min_khz}/{c.cur_khz}/{c.max_khz}" for c in self.clusters)

    def zones_text(self) -> str:
        """``cpu-thermal:41.2;battery:29.1`` (°C, one decimal)."""
        return ";".join(f"{kind}:{temp:.1f}" for kind, temp in self.zones)


def _temp_c(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    celsius = value / 1000 if abs(value) >= 1000 else value  # millidegrees on almost every kernel
    return celsius if -40.0 <= celsius <= 200.0 else None


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        return 0


def parse_state(text: str, t_s: float = 0.0) -> DeviceState:
    """Parse :data:`STATE_COMMAND`'s ``path:value`` lines into a :class:`DeviceState`."""
    cpus: dict[int, dict[str, str]] = {}
    zone_type: dict[int, str] = {}
    zone_temp: dict[int, float] = {}
    status = ""
    online: list[str] = []
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if not sep:
            continue
        value = value.strip()
        if match := _CPU_PATH.match(path):
            cpus.setdefault(int(match[1]), {})[match[2]] = value
        elif match := _ZONE_PATH.match(path):
            if match[2] == "type":
                zone_type[int(match[1])] = value
            elif (temp := _temp_c(value)) is not None:
                zone_temp[int(match[1])] = temp
        elif path == "/sys/class/power_supply/battery/status":
            status = value
        elif (match := _SUPPLY_ONLINE.match(path)) and match[1] != "battery" and value == "1":
            online.append(match[1])
    groups: dict[str, list[int]] = {}
    for cpu, files in sorted(cpus.items()):
        key = files.get("related_cpus") or f"max:{files.get('cpuinfo_max_freq', '')}"
        groups.setdefault(key, []).append(cpu)
    clusters = []
    for members in groups.values():
        files = cpus[members[0]]
        clusters.append(
            ClusterState(
                cpus=tuple(members),
                governor=files.get("scaling_governor", ""),
                cur_khz=_int(files.get("scaling_cur_freq", "")),
                min_khz=_int(files.get("scaling_min_freq", "")),
                max_khz=_int(files.get("scaling_max_freq", "")),
                hw_max_khz=_int(files.get("cpuinfo_max_freq", "")),
            )
        )
    clusters.sort(key=lambda c: c.cpus)
    zones = tuple((zone_type.get(i, f"zone{i}"), temp) for i, temp in sorted(zone_temp.items()))
    return DeviceState(t_s, tuple(clusters), zones, status, tuple(online))


def read_local_state() -> DeviceState:
    """This host's snapshot: the files of :data:`STATE_COMMAND` read directly (no shell)."""
    started = time.monotonic()
    lines = []
    for pattern in STATE_COMMAND.removeprefix("grep '' ").removesuffix(" 2>/dev/null").split():
        for name in sorted(glob.glob(pattern)):
            try:
                lines.append(f"{name}:{Path(name).read_text().strip()}")
            except OSError:  # some thermal zones refuse reads; grep skips them too
                continue
    return parse_state("\n".join(lines), (started + time.monotonic()) / 2)


def state_changes(before: DeviceState, after: DeviceState) -> tuple[bool, list[str]]:
    """Whether the unit between two snapshots ran throttled, and what changed (for warnings and rows)."""
    notes: list[str] = []
    throttled = False
    big_before, big_after = before.big, after.big
    if big_before is not None and big_after is not None:
        if big_before.max_khz != big_after.max_khz:
            throttled = True
            notes.append(f"cpu{big_after.label} max {big_before.max_khz}->{big_after.max_khz} kHz")
        elif big_after.capped:
            throttled = True
            notes.append(f"cpu{big_after.label} capped at {big_after.max_khz} of {big_after.hw_max_khz} kHz")
        if big_before.governor != big_after.governor:
            notes.append(f"governor {big_before.governor}->{big_after.governor}")
    rise = after.hottest_c - before.hottest_c
    if rise >= TEMP_RISE_WARN_C:
        notes.append(f"temperature {before.hottest_c:.1f}->{after.hottest_c:.1f} C")
    return throttled, notes


@dataclass(frozen=True)
class CooldownResult:
    """What the cooldown gate did: seconds waited, the last temperature seen, whether it got there."""

    waited_s: float
    temp_c: float
    reached: bool


def cool_down(
    read: Callable[[], DeviceState],
    *,
    max_temp_c: float | None,
    wait_s: float | None,
    poll_s: float = 0.5,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CooldownResult:
    """Wait before a unit until the hottest zone is at or below ``max_temp_c`` (at most ``wait_s``).

    Without ``max_temp_c`` it idles ``wait_s`` seconds (a fixed pause). With it, ``wait_s`` is the
    longest wait (None: 300 s); giving up is logged, not raised: the row still records the temperature.
    """
    start = clock()
    if max_temp_c is None:
        if wait_s:
            sleep(wait_s)
        return CooldownResult(clock() - start, math.nan, True)
    limit = 300.0 if wait_s is None else wait_s
    temp = read().hottest_c
    while not (temp <= max_temp_c) and clock() - start < limit:  # NaN (no zones): wait is pointless
        if math.isnan(temp):
            break
        sleep(min(poll_s, max(0.0, limit - (clock() - start))))
        temp = read().hottest_c
    reached = bool(temp <= max_temp_c)
    if not reached:
        log.warning(
            "cooldown gate: still %.1f C after %.0f s (wanted <= %.1f C); measuring anyway",
            temp,
            clock() - start,
            max_temp_c,
        )
    return CooldownResult(clock() - start, temp, reached)
