"""Make an emulated phone compute ``compute_slowdown`` times slower than the host, by sleeping.

LocalDevice and the emulated Android device run LiteRT on the host, which computes as fast as the cloud
server. A :class:`ComputePadding` stretches every measured inference time ``t`` to ``slowdown * t`` by
sleeping ``(slowdown - 1) * t`` right after it (the caller keeps drawing compute power meanwhile), and
returns the padded time the tools then report. Sleeping, not spinning: the host's cores stay free.

``time.sleep`` overshoots by tens of µs, which matters for sub-millisecond segments; the overshoot is
carried over and taken off the next padding, so the sum of the reported times stays within one
overshoot of ``slowdown * sum(t)`` and always equals the time actually spent (which the battery sees).

``slowdown`` may be a callable, asked at every inference: the emulated device's slowdown grows while
its thermal model throttles the CPU clock (:mod:`harness.emulator.thermal`).
Chains (the device's ``run_chain``: what schedules execute and in-chain profiles measure) use the
phone's own clock instead (:meth:`ComputePadding.phone_time`): ``slowdown`` x the thread's CPU time,
which a loaded host does not inflate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["ComputePadding"]


class ComputePadding:
    """Pads measured compute times by sleeping; one instance per run loop (it carries the overshoot)."""

    def __init__(
        self,
        slowdown: float | Callable[[], float],
        *,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ):
        """``sleep(seconds)`` may return early (e.g. ``threading.Event.wait`` when cancelled)."""
        self._slowdown = slowdown
        self._sleep = sleep
        self._clock = clock
        self._owed_s = 0.0  # padding still to sleep (negative: earlier sleeps overshot by that much)

    @property
    def slowdown(self) -> float:
        """The slowdown now (>= 1)."""
        value = self._slowdown() if callable(self._slowdown) else self._slowdown
        return max(1.0, float(value))

    def phone_time(self, cpu_s: float, wall_s: float) -> float:
        """The emulated phone's time (s) of an invocation that used ``cpu_s`` of its thread's CPU.

        ``slowdown * cpu_s``, and the call is made to last that long (sleeping what ``wall_s``, the time
        it already took, leaves). A phone does not share its cores with the host's other processes, so
        time this thread spent queued behind them (a loaded host: wall x3, CPU time within 10 %) is not
        the phone's time. For single-threaded invocations (the CPU time of one thread).
        """
        phone_s = self.slowdown * max(cpu_s, 0.0)
        if phone_s > wall_s:
            self._sleep(phone_s - wall_s)
        return phone_s

    def pad(self, measured_s: float) -> float:
        """Sleep ``(slowdown - 1) * measured_s`` (less earlier overshoot); return measured + slept (s)."""
        slowdown = self.slowdown
        if slowdown == 1.0 or measured_s <= 0:
            return measured_s
        self._owed_s += (slowdown - 1.0) * measured_s
        if self._owed_s <= 0:
            return measured_s
        t0 = self._clock()
        self._sleep(self._owed_s)
        slept_s = self._clock() - t0
        self._owed_s -= slept_s
        return measured_s + slept_s
