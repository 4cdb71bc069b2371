"""Battery drain during a run: sample ``current_now``/``voltage_now``, subtract idle, get mJ/inference.

Android exposes the fuel gauge at ``/sys/class/power_supply/battery/{current_now (µA), voltage_now
(µV)}``. The sign of ``current_now`` differs between vendors (negative while discharging on some,
positive on others), so the sign is calibrated per device from the idle samples taken while the phone
is unplugged (discharging): whatever sign the idle current has is "discharge". The energy of one
inference is the power above the idle baseline while the runner works times its latency.

Sampling runs on a parallel stream (its own thread and its own adb shell connections) while the
benchmark runs on another; ``dumpsys battery unplug`` makes the phone believe it is on battery (so the
fuel gauge reports discharge) and ``dumpsys battery reset`` must follow in every case, which
:func:`battery_unplugged` guarantees with try/finally (exceptions and Ctrl-C included).

Units and sign, one rule for every energy source (sysfs here, Perfetto battery counters in
:mod:`harness.devices.perfetto`): a current is normalised to **discharge µA**, positive while the
battery discharges. Android documents µA (``current_now``, ``BATTERY_PROPERTY_CURRENT_NOW``, Perfetto's
``current_ua``) but some vendors report mA: a set of readings whose median magnitude is below
:data:`MA_MEDIAN_LIMIT` is taken as mA (an awake phone with adb running draws well over 10 mA, and no
phone draws 10 A), unless the unit is given. The sign is learnt from readings taken while the battery is
known to discharge (unplugged): their median's sign is "discharge"; it can also be given
(``positive-discharge`` / ``negative-discharge``, the latter being Android's documented convention).
Power is mW, energy mJ; Perfetto's power rails count µWs (= µJ) and its energy counter µWh (= 3.6 mJ).

Caveats (see docs/devices.md): a USB cable charges the phone, which hides the drain (use wireless adb
or a power-switching hub); Android Studio emulators report a constant current, so no drain is visible
and the device profile's power model is used instead (:func:`excess_power_mw` returns None).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "BATTERY_DIR",
    "MA_MEDIAN_LIMIT",
    "BatterySampler",
    "CurrentUnit",
    "PowerSample",
    "SignConvention",
    "battery_unplugged",
    "calibrate_sign",
    "discharge_factor",
    "energy_per_inference_mj",
    "excess_power_mw",
    "parse_battery_reading",
    "power_mw",
]

log = logging.getLogger(__name__)

BATTERY_DIR = "/sys/class/power_supply/battery"
_MIN_VISIBLE_DRAIN = 0.01  # excess below 1% of idle power counts as "no visible drain"
MA_MEDIAN_LIMIT = 10_000  # readings whose median |value| is below this are mA, not µA
CurrentUnit = Literal["auto", "ua", "ma"]
SignConvention = Literal["auto", "positive-discharge", "negative-discharge"]


@dataclass(frozen=True)
class PowerSample:
    """One fuel-gauge reading: host monotonic time (s), raw current (µA, vendor sign), voltage (µV)."""

    t_s: float
    current_ua: float
    voltage_uv: float


def parse_battery_reading(text: str) -> tuple[float, float]:
    """Parse the output of ``cat current_now voltage_now`` into (µA, µV).

    Some kernels report millivolts; a voltage below 100 000 is taken as mV and scaled to µV.
    """
    values = [float(token) for token in text.split()]
    if len(values) < 2:
        raise ValueError(f"expected current_now and voltage_now, got {text!r}")
    current_ua, voltage = values[0], values[1]
    if 0 < abs(voltage) < 100_000:  # mV (e.g. 3850) instead of µV (3850000)
        voltage *= 1000
    return current_ua, voltage


def calibrate_sign(idle: list[PowerSample]) -> int:
    """+1 or -1: the factor that makes the discharge current positive on this device.

    Taken from the median idle current while unplugged; +1 when it is exactly zero (no information).
    """
    if not idle:
        return 1
    median = float(np.median([s.current_ua for s in idle]))
    return -1 if median < 0 else 1


def discharge_factor(
    reference: Sequence[float], *, unit: CurrentUnit = "auto", convention: SignConvention = "auto"
) -> float:
    """The factor that turns raw current readings into discharge µA (see the module's rule).

    ``reference``: raw readings taken while the battery discharged (the idle samples of an unplugged
    phone); they decide the unit and the sign where ``unit`` / ``convention`` are "auto". ±1 for µA
    devices, ±1000 for mA devices.
    """
    magnitude = float(np.median(np.abs(reference))) if len(reference) else 0.0
    if unit == "auto":
        unit = "ma" if 0 < magnitude < MA_MEDIAN_LIMIT else "ua"
    scale = 1000.0 if unit == "ma" else 1.0
    if convention == "positive-discharge":
        sign = 1
    elif convention == "negative-discharge":
        sign = -1
    else:
        sign = -1 if len(reference) and float(np.median(reference)) < 0 else 1
    return sign * scale


def power_mw(samples: list[PowerSample], sign: float) -> np.ndarray:
    """Power of each sample in mW: (factor · raw current → µA) · µV = 1e-12 W = 1e-9 mW.

    ``sign`` is :func:`calibrate_sign` (µA devices) or :func:`discharge_factor` (±1000 for mA devices).
    """
    return np.array([sign * s.current_ua * s.voltage_uv / 1e9 for s in samples], dtype=np.float64)


def _trimmed_mean(values: np.ndarray, fraction: float = 0.1) -> float:
    """Mean without the lowest and highest ``fraction`` of values (drops samples at run edges)."""
    ordered = np.sort(values)
    cut = int(len(ordered) * fraction)
    kept = ordered[cut : len(ordered) - cut] if len(ordered) > 2 * cut else ordered
    return float(np.mean(kept))


def excess_power_mw(
    idle: list[PowerSample], run: list[PowerSample], sign: float, *, window: tuple[float, float] | None = None
) -> float | None:
    """Time-averaged power above the idle baseline over the run window (mW), or None if no drain shows.

    Each run sample stands for the time from the midpoint with its predecessor to the midpoint with its
    successor (clipped to ``window``, default first..last sample): a fuel gauge read over adb comes back
    more slowly while the CPU is busy, so a plain mean of the samples would under-weight busy periods.
    The idle baseline is a trimmed mean (robust to a stray background wake-up). None means the fuel
    gauge did not move (constant-current emulators, a charging phone, too few samples): the caller falls
    back to the device's power model and says so.
    """
    if len(idle) < 2 or len(run) < 3:
        return None
    idle_mw = _trimmed_mean(power_mw(idle, sign))
    ordered = sorted(run, key=lambda sample: sample.t_s)
    times = np.array([sample.t_s for sample in ordered])
    start, end = window if window is not None else (float(times[0]), float(times[-1]))
    if end <= start:
        return None
    edges = np.concatenate(([start], (times[1:] + times[:-1]) / 2, [end]))
    weights = np.clip(np.diff(np.clip(edges, start, end)), 0.0, None)  # seconds each sample stands for
    run_mw = float(np.sum(power_mw(ordered, sign) * weights) / np.sum(weights))
    excess = run_mw - idle_mw
    if excess <= _MIN_VISIBLE_DRAIN * max(abs(idle_mw), 1.0):
        return None
    return excess


def energy_per_inference_mj(excess_mw: float, window_s: float, inferences: int) -> float:
    """Energy above idle of a run window, shared by the inferences it ran: mW × s / n = mJ per inference.

    The window covers the whole runner process (start-up and warm-up included, as on a real phone the
    drain of those phases is real); with hundreds of inferences per window their share is small.
    """
    return excess_mw * window_s / max(inferences, 1)


class BatterySampler:
    """Read the fuel gauge every ``period_s`` on ``streams`` background threads until stopped.

    ``read`` returns (µA, µV); on AdbDevice each call is its own adb shell stream, so sampling runs in
    parallel with the benchmark's stream (and, with several streams, with itself). Errors while sampling end the sampling (logged), never the run.
    """

    def __init__(self, read: Callable[[], tuple[float, float]], *, period_s: float = 0.02, streams: int = 1):
        self._read = read
        self._period_s = period_s
        self._streams = max(streams, 1)  # parallel readers: a reading over adb takes ~10 ms
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.samples: list[PowerSample] = []
        self.error: Exception | None = None

    def _sample(self) -> PowerSample:
        """One reading, time-stamped at the middle of the request (the reading's best time estimate)."""
        t0 = time.monotonic()
        current, voltage = self._read()
        return PowerSample((t0 + time.monotonic()) / 2, current, voltage)

    def within(self, start_s: float, end_s: float) -> list[PowerSample]:
        """The samples taken inside a window of host monotonic time (the run itself)."""
        return [s for s in self.samples if start_s <= s.t_s <= end_s]

    def collect(self, duration_s: float) -> list[PowerSample]:
        """Sample in the calling thread for ``duration_s`` (used for the idle baseline)."""
        out: list[PowerSample] = []
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            out.append(self._sample())
            time.sleep(self._period_s)
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sample = self._sample()
            except Exception as exc:  # any transport error ends sampling, not the run
                self.error = exc
                log.warning("battery sampling stopped: %s", exc)
                return
            with self._lock:
                self.samples.append(sample)
            self._stop.wait(self._period_s)

    def __enter__(self) -> BatterySampler:
        self.samples = []
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, name=f"battery-sampler-{i}", daemon=True)
            for i in range(self._streams)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self.samples.sort(key=lambda sample: sample.t_s)


@contextmanager
def battery_unplugged(run_dumpsys: Callable[[list[str]], object]) -> Iterator[None]:
    """``dumpsys battery unplug`` on entry and ``dumpsys battery reset`` on exit, whatever happens.

    ``run_dumpsys`` runs ``dumpsys battery <args>`` on the device. A failing reset (device gone) is
    logged, not raised, so it never hides the error that ended the run.
    """
    run_dumpsys(["unplug"])
    try:
        yield
    finally:
        try:
            run_dumpsys(["reset"])
        except Exception as exc:  # the device may be gone; the original error matters more
            log.warning("could not reset the battery state (run `adb shell dumpsys battery reset`): %s", exc)
