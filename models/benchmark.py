"""The one benchmark run loop and the statistics it returns.

Everything that times invocations runs :func:`run_loop`: the in-process device
(:class:`harness.devices.local.LocalDevice`), the emulated ``benchmark_model``, the server pool's
``/profile`` and the backward-pass timing. The loop is TFLite's benchmark tool's: a warm-up phase, then
a measured phase, each running until it has done at least ``runs`` iterations *and* spent at least
``min_secs``, but starting no new iteration after ``max_secs``::

    for run in count(): if not ((run < min_runs or now < min_finish) and now <= max_finish): break

:class:`BenchmarkStats` is what a benchmark returns, whether computed from samples here or parsed from
a real ``benchmark_model`` log (:mod:`harness.devices.benchmark_output`). Imports numpy only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "BenchmarkSettings",
    "BenchmarkStats",
    "LoopListener",
    "LoopResult",
    "LoopSettings",
    "chain_medians",
    "random_tensor",
    "run_loop",
    "stats_from_samples",
]

_Z10 = 1.2815515655446004  # standard normal quantile of 0.90: p90 ~ mean + z * std


@dataclass(frozen=True)
class LoopSettings:
    """How long each phase of the run loop lasts (``benchmark_model``'s flags of the same names)."""

    runs: int = 50  # minimum measured runs (--num_runs)
    warmup_runs: int = 1  # minimum warm-up runs
    warmup_min_secs: float = 0.5  # minimum warm-up duration (s)
    min_secs: float = 0.0  # minimum measured duration (s)
    max_secs: float = 150.0  # no new run starts after this many seconds of a phase (s)
    run_delay_s: float = 0.0  # pause between runs (s), not timed


@dataclass(frozen=True)
class BenchmarkSettings(LoopSettings):
    """What :meth:`harness.devices.base.Device.benchmark` takes: the loop plus how to run the model."""

    threads: int = 1
    use_xnnpack: bool | None = None  # None: the runtime's default (XNNPACK on)
    taskset_mask: str | None = None  # hex CPU mask to pin the runner to, e.g. "f0"
    measure_energy: bool = False  # sample the battery / apply the power model


class LoopListener:
    """Hooks around the phases (the emulated tool logs its headers and draws compute power); no-ops."""

    def phase_started(self, phase: str, runs: int, min_secs: float, max_secs: float) -> None:
        """``phase`` is ``"warmup"`` or ``"measured"``."""

    def phase_ended(self, phase: str, samples_us: list[float]) -> None:
        """The phase's per-run times (µs, padded)."""


@dataclass
class LoopResult:
    """Per-run times of both phases (µs, as reported: padded when a padding was given)."""

    warmup_us: list[float]
    samples_us: list[float]
    init_us: float = math.nan  # runner creation, when the caller timed it
    cancelled: bool = False

    def stats(self, settings: LoopSettings | None = None) -> BenchmarkStats:
        """The statistics ``benchmark_model`` would print for these runs."""
        stats = stats_from_samples(self.samples_us, init_us=self.init_us, warmup_us=self.warmup_us)
        stats.warmup_count = len(self.warmup_us)
        if settings is not None:
            stats.warmup_min_secs, stats.min_secs = settings.warmup_min_secs, settings.min_secs
        return stats


def run_loop(
    invoke: Callable[[], object],
    settings: LoopSettings,
    *,
    pad: Callable[[float], float] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    cancelled: Callable[[], bool] | None = None,
    listener: LoopListener | None = None,
    init_us: float = math.nan,
) -> LoopResult:
    """Warm-up phase then measured phase of ``invoke()``; every run timed with ``perf_counter``.

    ``pad(measured_s) -> reported_s`` stretches each run (the emulated slowdown sleeps inside it);
    ``sleep`` waits ``run_delay_s`` between runs; ``cancelled()`` stops the loop between runs.
    """
    listener = listener or LoopListener()
    stop = cancelled or (lambda: False)
    phases = (
        ("warmup", settings.warmup_runs, settings.warmup_min_secs),
        ("measured", settings.runs, settings.min_secs),
    )
    result = LoopResult(warmup_us=[], samples_us=[], init_us=init_us)
    for phase, runs, min_secs in phases:
        samples = result.warmup_us if phase == "warmup" else result.samples_us
        listener.phase_started(phase, runs, min_secs, settings.max_secs)
        now = began = time.perf_counter()
        while (len(samples) < runs or now - began < min_secs) and now - began <= settings.max_secs:
            if stop():
                result.cancelled = True
                break
            t0 = time.perf_counter()
            invoke()
            elapsed_s = time.perf_counter() - t0
            samples.append((pad(elapsed_s) if pad is not None else elapsed_s) * 1e6)
            if settings.run_delay_s > 0:
                sleep(settings.run_delay_s)
            now = time.perf_counter()
        listener.phase_ended(phase, samples)
        if result.cancelled:
            break
    return result


def stats_from_samples(samples_us: list[float], *, init_us: float, warmup_us: list[float]) -> BenchmarkStats:
    """Build :class:`BenchmarkStats` from per-run times (µs), as ``benchmark_model`` would report them."""
    if not samples_us:
        return BenchmarkStats(init_us=init_us, output_format="in-process", warmup_count=len(warmup_us))
    arr = np.asarray(samples_us, dtype=np.float64)
    p5, median, p95 = np.percentile(arr, [5, 50, 95])
    return BenchmarkStats(
        count=len(arr),
        first_us=float(arr[0]),
        curr_us=float(arr[-1]),
        min_us=float(arr.min()),
        max_us=float(arr.max()),
        avg_us=float(arr.mean()),
        std_us=float(arr.std()),
        p5_us=float(p5),
        median_us=float(median),
        p95_us=float(p95),
        init_us=init_us,
        first_inference_us=float(warmup_us[0]) if warmup_us else float(arr[0]),
        warmup_avg_us=float(np.mean(warmup_us)) if warmup_us else math.nan,
        inference_avg_us=float(arr.mean()),
        output_format="in-process",
        samples_us=[float(v) for v in arr],
    )


# Idle time before each timed pass of a chain when profiling in chain context (s): a request or a
# stage finds its executor idle for at least a round trip and the other side's work, and after ~50 ms
# idle the caches and the core it wakes on are as cold as they get (measured: small CNN on the server,
# 0.33 ms back to back, 0.51 ms after 20 ms idle, 0.57-0.67 ms after 50-200 ms).
CHAIN_IDLE_S = 0.05


def chain_medians(passes: np.ndarray) -> np.ndarray:
    """Per-segment times (n,) from timed passes of a chain (runs, n), additive like the passes.

    The per-segment medians, scaled so that they add up to the median pass (a sum of medians is not the
    median of sums when segments are skewed, e.g. by sleep overshoot carried between them).
    """
    passes = np.asarray(passes, dtype=np.float64)
    medians = np.median(passes, axis=0)
    total = float(medians.sum())
    return medians * (float(np.median(passes.sum(axis=1))) / total) if total > 0 else medians


def random_tensor(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Random benchmark input: integers over the dtype's full range, booleans 0/1, floats in [-1, 1)."""
    shape = tuple(max(1, int(d)) for d in shape)  # dynamic (-1 / 0) dimensions run at 1
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


@dataclass
class BenchmarkStats:
    """Statistics of one ``benchmark_model`` run (or its in-process equivalent), times in µs as printed.

    ``count``..``std_us`` come from the measured-run ``count= first= curr= min= max= avg= std=`` line;
    ``p5_us``/``median_us``/``p95_us`` only from versions that print percentiles; the ``*_inference_us``
    fields from the ``Inference timings in us:`` (or older ``Average inference timings``) summary line.
    Fields that a version does not print are NaN. ``energy_mj``/``power_mw`` are filled by devices that
    measure energy (NaN otherwise); ``wall_s`` is the harness-side wall time of the whole call.
    """

    count: int = 0
    first_us: float = math.nan
    curr_us: float = math.nan
    min_us: float = math.nan
    max_us: float = math.nan
    avg_us: float = math.nan
    std_us: float = math.nan
    p5_us: float = math.nan
    median_us: float = math.nan
    p95_us: float = math.nan
    init_us: float = math.nan  # interpreter creation + allocation
    first_inference_us: float = math.nan
    warmup_avg_us: float = math.nan
    inference_avg_us: float = math.nan
    output_format: str = ""  # which known format was recognised (for diagnostics)
    energy_mj: float = math.nan  # energy above idle per inference
    power_mw: float = math.nan  # power above idle while the runner computed
    wall_s: float = math.nan  # harness wall time of the call (push excluded)
    samples_us: list[float] = field(default_factory=list)  # per-run times when the runner exposes them
    warmup_count: int = 0  # runs of the warm-up phase (its stats line), 0 when not printed
    warmup_min_secs: float = 0.0  # "Running benchmark for at least N iterations and at least S seconds"
    min_secs: float = 0.0  # the same header of the measured phase

    @property
    def runner_s(self) -> float:
        """Time the runner itself accounts for (s): init + warm-up phase + measured phase.

        A phase lasts at least its runs × average and at least the seconds its header promised (the
        tool keeps iterating until both hold), so each phase counts ``max(count · avg, min_secs)``.
        """
        init_s = 0.0 if math.isnan(self.init_us) else self.init_us / 1e6
        warmup_s = 0.0 if math.isnan(self.warmup_avg_us) else self.warmup_count * self.warmup_avg_us / 1e6
        measured_s = 0.0 if math.isnan(self.mean_ms) else self.count * self.mean_ms / 1e3
        return init_s + max(warmup_s, self.warmup_min_secs) + max(measured_s, self.min_secs)

    @property
    def mean_ms(self) -> float:
        """Mean latency (ms): the measured run's ``avg``, else the summary line's ``Inference (avg)``."""
        value = self.avg_us if not math.isnan(self.avg_us) else self.inference_avg_us
        return value / 1e3

    @property
    def median_ms(self) -> float:
        """Median latency (ms): exact from per-run samples or ``median=``, else the mean."""
        if self.samples_us:
            return float(np.median(self.samples_us)) / 1e3
        if not math.isnan(self.median_us) and (self.median_us > 0 or not self.mean_ms > 0):
            return self.median_us / 1e3
        return self.mean_ms  # no median printed, or it rounded to 0 µs on a sub-µs segment

    def quantile_ms(self, q: float) -> float:
        """Latency quantile ``q`` in (0, 1) in ms.

        Exact from per-run samples when available; otherwise estimated from what ``benchmark_model``
        prints: a normal approximation ``avg ± z·std`` clamped to ``[min, max]`` (``median`` ± the
        printed p5/p95 spread when percentiles exist). The tool does not print p10/p90 itself.
        """
        if self.samples_us:
            return float(np.quantile(self.samples_us, q)) / 1e3
        center = self.median_ms * 1e3
        if not math.isnan(self.p5_us) and not math.isnan(self.p95_us):
            # p5/p95 are 1.645 sigma away; p10/p90 1.2816 sigma: scale the printed spread
            side = self.p95_us if q > 0.5 else self.p5_us
            value = center + (side - center) * (abs(_normal_z(q)) / 1.6448536269514722)
        elif not math.isnan(self.std_us):
            value = self.mean_ms * 1e3 + _normal_z(q) * self.std_us
        else:
            value = center
        low = self.min_us if not math.isnan(self.min_us) else -math.inf
        high = self.max_us if not math.isnan(self.max_us) else math.inf
        return float(min(max(value, low), high)) / 1e3

    @property
    def p10_ms(self) -> float:
        return self.quantile_ms(0.10)

    @property
    def p90_ms(self) -> float:
        return self.quantile_ms(0.90)

    def with_energy(self, energy_mj: float, power_mw: float) -> BenchmarkStats:
        """A copy with the energy fields set."""
        return replace(self, energy_mj=energy_mj, power_mw=power_mw)


def _normal_z(q: float) -> float:
    """Standard normal quantile (exact at 0.1/0.9/0.05/0.95; erfinv-free rational approx elsewhere)."""
    table = {0.1: -_Z10, 0.9: _Z10, 0.05: -1.6448536269514722, 0.95: 1.6448536269514722, 0.5: 0.0}
    if q in table:
        return table[q]
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)
