"""The emulated SoC's temperature and CPU clocks: a first-order RC thermal model with a trip point.

    C dT/dt = P - (T - T_ambient) / R        (T in °C, P in W, R in °C/W, C in J/°C)

``P`` is the device's load power (idle + compute, from :class:`~harness.emulator.battery.Battery`), so
the temperature rises while runners compute and decays towards ``ambient + idle_W * R`` at idle. Between
two events the power is constant and the equation is solved exactly:
``T(t + dt) = T_inf + (T(t) - T_inf) * exp(-dt / (R C))`` with ``T_inf = ambient + P R``.

Thermal throttling as Android's cpufreq cooling device does it: above ``trip_c`` the clusters'
``scaling_max_freq`` drops to ``throttled_freq_ratio`` of ``cpuinfo_max_freq``; below
``trip_c - trip_hysteresis_c`` it comes back. The trip is checked at every event (a runner starting or
stopping, an inference being padded, a sysfs read), i.e. many times per second while anything runs.
While throttled, compute power and speed scale with the frequency ratio (dynamic power ~ f at fixed
voltage, a simplification): runners pad their inferences by ``compute_slowdown / ratio`` and draw
``ratio`` of their compute power.

The ``schedutil`` governor is modelled coarsely: ``scaling_cur_freq`` is the cap while any runner
computes, the cluster minimum otherwise (``performance``: always the cap; ``powersave``: always min).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.specs import CpuClusterSpec, DeviceSpec

__all__ = ["BATTERY_ZONE_SHARE", "ClusterClock", "ThermalModel"]

# The battery sits away from the SoC: its zone rises by this share of the SoC's rise over ambient.
BATTERY_ZONE_SHARE = 0.25


@dataclass(frozen=True)
class ClusterClock:
    """One cluster's cpufreq view at an instant (kHz)."""

    first_cpu: int
    spec: CpuClusterSpec
    cur_khz: int  # scaling_cur_freq
    cap_khz: int  # scaling_max_freq (lowered while throttled)

    @property
    def cpus(self) -> range:
        return range(self.first_cpu, self.first_cpu + self.spec.cpus)


class ThermalModel:
    """Temperature state and throttling of one emulated device (not thread-safe: the battery locks it)."""

    def __init__(self, spec: DeviceSpec):
        self.spec = spec
        # start in the idle steady state: the phone has been lying on the desk
        self.temp_c = spec.ambient_c + spec.idle_mw / 1e3 * spec.thermal_resistance_c_per_w
        self.throttled = False
        self.busy = False  # a runner computes (governor: cur freq at the cap)
        self.trips = 0  # how often the trip point was crossed upwards (tests, logs)

    @property
    def tau_s(self) -> float:
        """Time constant R * C (s)."""
        return self.spec.thermal_resistance_c_per_w * self.spec.thermal_capacitance_j_per_c

    @property
    def freq_ratio(self) -> float:
        """Frequency cap / maximum: 1 normally, ``throttled_freq_ratio`` while throttled."""
        return self.spec.throttled_freq_ratio if self.throttled else 1.0

    def advance(self, dt_s: float, power_mw: float, *, busy: bool) -> None:
        """Integrate ``dt_s`` seconds at constant ``power_mw`` (exact), then re-check the trip point."""
        if dt_s > 0:
            t_inf = self.spec.ambient_c + power_mw / 1e3 * self.spec.thermal_resistance_c_per_w
            self.temp_c = t_inf + (self.temp_c - t_inf) * math.exp(-dt_s / self.tau_s)
        if not self.throttled and self.temp_c >= self.spec.trip_c:
            self.throttled = True
            self.trips += 1
        elif self.throttled and self.temp_c <= self.spec.trip_c - self.spec.trip_hysteresis_c:
            self.throttled = False
        self.busy = busy

    def clocks(self) -> list[ClusterClock]:
        """Every cluster's current and capped frequency."""
        out: list[ClusterClock] = []
        first = 0
        for cluster in self.spec.clusters():
            cap = max(cluster.min_khz, round(cluster.max_khz * self.freq_ratio))
            if cluster.governor == "performance":
                cur = cap
            elif cluster.governor == "powersave":
                cur = cluster.min_khz
            else:
                cur = cap if self.busy else cluster.min_khz
            out.append(ClusterClock(first, cluster, cur, cap))
            first += cluster.cpus
        return out

    def zones(self) -> list[tuple[str, float]]:
        """Thermal zones as ``(type, °C)``: the SoC's CPU zone and the battery."""
        battery_c = self.spec.ambient_c + BATTERY_ZONE_SHARE * (self.temp_c - self.spec.ambient_c)
        return [("cpu-thermal", self.temp_c), ("battery", battery_c)]
