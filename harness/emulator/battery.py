"""The emulated battery: a power model turned into what sysfs and ``dumpsys battery`` report.

Load power (mW) = the profile's ``idle_mw`` all the time + ``compute_power_mw(threads)`` for every runner
(``benchmark_model``, ``jointdnn_chain_runner``) while it computes. The battery voltage depends only on
the charge level (not on the load), so current = power / voltage exactly and energy integrated from
sysfs samples (``current_now * voltage_now * dt``) reproduces the model.

Sign convention of ``current_now`` (µA), as on most Qualcomm/Google phones: **negative while the
battery discharges**, positive while it charges. The emulated phone starts "connected by USB" and
charging through an emulated 2.5 W charger (like a phone on a cable); ``dumpsys battery unplug``
disconnects the emulated charger as well as the framework's view of it -- on a real phone it only
changes what the framework reports, so energy must be measured over wireless adb or with a
power-switching hub -- and ``dumpsys battery reset`` reconnects it.

``dumpsys battery set level N`` overrides the reported level (sysfs ``capacity`` included) until reset.

The load power also heats the SoC (:class:`~harness.emulator.thermal.ThermalModel`, integrated at the same
events); while it throttles, compute power scales with the frequency ratio. :meth:`Battery.attach_charger`
connects a charger that ``dumpsys battery unplug`` cannot cut, like a real phone on a USB cable (the
framework then reports unplugged while the battery charges): what a profiler must notice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from harness.emulator.thermal import ThermalModel
from harness.specs import DeviceSpec

T = TypeVar("T")

__all__ = ["CHARGER_MW", "Battery"]

_THERMAL_STEP_S = 0.005  # s: how stale the throttle state may be when a runner asks for its slowdown
CHARGER_MW = 2500.0  # mW delivered by the emulated USB charger (5 V x 500 mA)
_STATUS_CODES = {"Unknown": 1, "Charging": 2, "Discharging": 3, "Not charging": 4, "Full": 5}


class Battery:
    """Thread-safe battery state; energy is integrated exactly at every change of load."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        level_pct: float = 80.0,
        usb_powered: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._level_pct = level_pct  # true state of charge, %
        self._usb = usb_powered
        self._ac = False
        self._wireless = False
        self._updates_stopped = False  # after `dumpsys battery unplug` / `set`, until `reset`
        self._overrides: dict[str, int] = {}  # dumpsys battery set <key> <value>
        self._active: dict[int, float] = {}  # runner token -> compute power above idle (mW)
        self._next_token = 1
        self._last_s = clock()
        self._energy_mj = 0.0  # load energy since start (idle included), mJ
        self._compute_energy_mj = 0.0  # energy above idle, mJ
        self.thermal = ThermalModel(spec)  # advanced with the load power at every event (under the lock)
        self._hard_charger = False  # a charger `dumpsys battery unplug` cannot cut (attach_charger)

    # --- load ---------------------------------------------------------------------------------------
    @contextmanager
    def computing(self, threads: int = 1) -> Iterator[None]:
        """Mark a runner as computing with ``threads`` threads for the duration of the block."""
        token = self.begin_compute(threads)
        try:
            yield
        finally:
            self.end_compute(token)

    def begin_compute(self, threads: int = 1) -> int:
        with self._lock:
            self._advance()
            token = self._next_token
            self._next_token += 1
            self._active[token] = self.spec.compute_power_mw(max(1, threads))
            return token

    def end_compute(self, token: int) -> None:
        with self._lock:
            self._advance()
            self._active.pop(token, None)

    def draw_mj(self, energy_mj: float) -> None:
        """A discrete draw of ``energy_mj`` above idle (negative: energy the power model over-counts).

        Used for weight-memory traffic: the compute power model includes reading a graph's dense weights
        from DRAM, so a graph whose weights are held in SmartDeal form draws (dense - compact bytes) x
        the profile's ``dram_pj_per_byte`` less per run (see ``jointdnn_chain_runner``).
        """
        with self._lock:
            self._advance()
            self._energy_mj += energy_mj
            self._compute_energy_mj += energy_mj
            capacity_mj = self.spec.battery_capacity_mah * 3.6 * self.spec.battery_voltage_v * 1e3
            self._level_pct = min(100.0, max(0.0, self._level_pct - 100.0 * energy_mj / capacity_mj))

    def _load_mw(self) -> float:
        return self.spec.idle_mw + sum(self._active.values()) * self.thermal.freq_ratio

    def _plugged(self) -> dict[str, bool]:
        """Power sources as the device sees them: ``dumpsys battery set/unplug`` overrides win."""
        actual = {"ac": self._ac, "usb": self._usb, "wireless": self._wireless}
        return {key: bool(self._overrides.get(key, int(value))) for key, value in actual.items()}

    def _charging(self) -> bool:
        return self._hard_charger or any(self._plugged().values())

    def _advance(self) -> None:
        """Integrate energy and state of charge from the last change until now (call with the lock)."""
        now = self._clock()
        dt_s = max(0.0, now - self._last_s)
        self._last_s = now
        load = self._load_mw()
        self._energy_mj += load * dt_s
        self._compute_energy_mj += (load - self.spec.idle_mw) * dt_s
        net_mw = (CHARGER_MW if self._charging() else 0.0) - load
        capacity_mj = self.spec.battery_capacity_mah * 3.6 * self.spec.battery_voltage_v * 1e3
        self._level_pct = min(100.0, max(0.0, self._level_pct + 100.0 * net_mw * dt_s / capacity_mj))
        self.thermal.advance(dt_s, load, busy=bool(self._active))

    # --- thermal and charger (emulation) -------------------------------------------------------------
    def thermal_reading(self, read: Callable[[ThermalModel], T]) -> T:
        """``read`` the thermal model brought up to now (sysfs temperatures, clocks, compute slowdown)."""
        with self._lock:
            self._advance()
            return read(self.thermal)

    def compute_slowdown(self) -> float:
        """The spec's ``compute_slowdown`` divided by the frequency ratio (slower while throttled).

        Asked at every inference, so it is cheap: the model is advanced (under the lock) at most every
        :data:`_THERMAL_STEP_S`; in between the last state is read (plain attribute reads).
        """
        if self._clock() - self._last_s >= _THERMAL_STEP_S:
            with self._lock:
                self._advance()
        return self.spec.compute_slowdown / self.thermal.freq_ratio

    def attach_charger(self, attached: bool = True) -> None:
        """Connect (or remove) a charger that ``dumpsys battery unplug`` cannot cut (a USB cable)."""
        with self._lock:
            self._advance()
            self._hard_charger = attached

    def charger_online(self) -> bool:
        """Whether a charger really feeds the battery (sysfs ``usb/online``; overrides don't change it)."""
        with self._lock:
            self._advance()
            return self._charging()

    # --- readings -----------------------------------------------------------------------------------
    def power_mw(self) -> float:
        """Current load power (mW), idle included."""
        with self._lock:
            return self._load_mw()

    def energy_mj(self, *, above_idle: bool = False) -> float:
        """Load energy integrated since the device started (mJ); ``above_idle`` = compute part only."""
        with self._lock:
            self._advance()
            return self._compute_energy_mj if above_idle else self._energy_mj

    def voltage_uv(self) -> int:
        """Battery voltage (µV): nominal +- 0.3 V across the charge range, independent of load."""
        with self._lock:
            self._advance()
            return self._voltage_uv()

    def _voltage_uv(self) -> int:
        volts = self.spec.battery_voltage_v + 0.3 * (self._level_pct - 50.0) / 50.0
        return round(volts * 1e6)

    def current_ua(self) -> int:
        """Battery current (µA): negative while discharging, positive while charging."""
        with self._lock:
            self._advance()
            net_mw = (CHARGER_MW if self._charging() else 0.0) - self._load_mw()
            return round(net_mw / (self._voltage_uv() / 1e6) * 1e3)

    def level(self) -> int:
        """Reported level (%): the ``set level`` override if any, else the state of charge."""
        with self._lock:
            self._advance()
            return int(self._overrides.get("level", round(self._level_pct)))

    def status(self) -> str:
        """``Charging`` / ``Discharging`` / ``Full`` (sysfs words)."""
        with self._lock:
            self._advance()
            return self._status()

    def _status(self) -> str:
        if "status" in self._overrides:
            names = {code: name for name, code in _STATUS_CODES.items()}
            return names.get(self._overrides["status"], "Unknown")
        if not self._charging():
            return "Discharging"
        return "Full" if self._level_pct >= 100.0 else "Charging"

    # --- dumpsys battery ----------------------------------------------------------------------------
    def unplug(self) -> None:
        """``dumpsys battery unplug``: report unplugged and (here) cut the emulated charger."""
        with self._lock:
            self._advance()
            self._updates_stopped = True
            for key in ("ac", "usb", "wireless", "dock"):
                self._overrides[key] = 0

    def reset(self) -> None:
        """``dumpsys battery reset``: back to the real state (charger connected again if it was)."""
        with self._lock:
            self._advance()
            self._updates_stopped = False
            self._overrides.clear()

    def set_value(self, key: str, value: int) -> None:
        """``dumpsys battery set <ac|usb|wireless|dock|status|level|temp|counter|present> <value>``."""
        known = {"ac", "usb", "wireless", "dock", "status", "level", "temp", "counter", "present", "invalid"}
        if key not in known:
            raise ValueError(f"Unknown set option: {key}")
        with self._lock:
            self._advance()
            self._updates_stopped = True
            self._overrides[key] = value

    def dumpsys(self) -> str:
        """The text of ``dumpsys battery`` (Android 14 layout)."""
        with self._lock:
            self._advance()
            plugged = self._plugged()
            level = int(self._overrides.get("level", round(self._level_pct)))
            status = (
                _STATUS_CODES[self._status()]
                if "status" not in self._overrides
                else self._overrides["status"]
            )
            charge_uah = round(self._level_pct / 100 * self.spec.battery_capacity_mah * 1000)
            lines = ["Current Battery Service state:"]
            if self._updates_stopped:
                lines.append("  (UPDATES STOPPED -- use 'reset' to restart)")
            lines += [
                f"  AC powered: {str(plugged['ac']).lower()}",
                f"  USB powered: {str(plugged['usb']).lower()}",
                f"  Wireless powered: {str(plugged['wireless']).lower()}",
                "  Dock powered: false",
                f"  Max charging current: {500000 if plugged['usb'] else 0}",
                f"  Max charging voltage: {5000000 if plugged['usb'] else 0}",
                f"  Charge counter: {self._overrides.get('counter', charge_uah)}",
                f"  status: {status}",
                "  health: 2",
                f"  present: {str(bool(self._overrides.get('present', 1))).lower()}",
                f"  level: {level}",
                "  scale: 100",
                f"  voltage: {self._voltage_uv() // 1000}",
                f"  temperature: {self._overrides.get('temp', self._temp_decidegrees())}",
                "  technology: Li-ion",
            ]
            return "\n".join(lines) + "\n"

    def _temp_decidegrees(self) -> int:
        """Battery temperature in tenths of °C (sysfs ``temp``, dumpsys ``temperature``)."""
        return round(self.thermal.zones()[1][1] * 10)

    def charge_counter_uah(self) -> int:
        with self._lock:
            self._advance()
            return round(self._level_pct / 100 * self.spec.battery_capacity_mah * 1000)

    def sysfs_files(self) -> dict[str, Callable[[], bytes]]:
        """Readers of ``/sys/class/power_supply/battery/<name>`` (values end with a newline)."""

        def text(fn: Callable[[], object]) -> Callable[[], bytes]:
            return lambda: f"{fn()}\n".encode()

        return {
            "capacity": text(self.level),
            "status": text(self.status),
            "current_now": text(self.current_ua),
            "voltage_now": text(self.voltage_uv),
            "charge_counter": text(self.charge_counter_uah),
            "present": text(lambda: 1),
            "health": text(lambda: "Good"),
            "technology": text(lambda: "Li-ion"),
            "temp": text(lambda: self.thermal_reading(lambda _: self._temp_decidegrees())),
            "type": text(lambda: "Battery"),
        }
