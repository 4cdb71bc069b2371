"""The one run loop: phases bounded by runs / min_secs / max_secs, padding, delays, cancellation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from models.benchmark import LoopListener, LoopSettings, random_tensor, run_loop, stats_from_samples


def test_each_phase_runs_at_least_its_runs() -> None:
    calls: list[int] = []
    result = run_loop(lambda: calls.append(1), LoopSettings(runs=7, warmup_runs=3, warmup_min_secs=0.0))
    assert len(result.warmup_us) == 3 and len(result.samples_us) == 7 and len(calls) == 10
    stats = result.stats()
    assert stats.count == 7 and stats.warmup_count == 3


def test_min_secs_keeps_a_phase_going_and_max_secs_stops_it() -> None:
    def nap() -> None:
        time.sleep(0.002)

    long = run_loop(nap, LoopSettings(runs=1, warmup_runs=1, warmup_min_secs=0.0, min_secs=0.05))
    assert len(long.samples_us) >= 10  # 50 ms of 2 ms runs (sleep overshoots, so fewer than 25)
    capped = run_loop(nap, LoopSettings(runs=10_000, warmup_runs=0, warmup_min_secs=0.0, max_secs=0.03))
    assert 1 <= len(capped.samples_us) < 10_000


def test_padding_is_what_gets_reported() -> None:
    result = run_loop(
        lambda: None, LoopSettings(runs=5, warmup_runs=0, warmup_min_secs=0.0), pad=lambda s: 0.25
    )
    assert result.samples_us == [250_000.0] * 5


def test_delay_between_runs_and_listener_sees_both_phases() -> None:
    slept: list[float] = []
    seen: list[tuple[str, int]] = []

    class Listener(LoopListener):
        def phase_ended(self, phase: str, samples_us: list[float]) -> None:
            seen.append((phase, len(samples_us)))

    settings = LoopSettings(runs=4, warmup_runs=2, warmup_min_secs=0.0, run_delay_s=0.5)
    run_loop(lambda: None, settings, sleep=slept.append, listener=Listener())
    assert slept == [0.5] * 6
    assert seen == [("warmup", 2), ("measured", 4)]


def test_cancel_stops_between_runs() -> None:
    calls: list[int] = []
    result = run_loop(
        lambda: calls.append(1),
        LoopSettings(runs=100, warmup_runs=1, warmup_min_secs=0.0),
        cancelled=lambda: len(calls) >= 5,
    )
    assert result.cancelled and len(calls) == 5


def test_stats_from_samples_are_exact() -> None:
    stats = stats_from_samples([1000.0, 3000.0, 2000.0], init_us=5.0, warmup_us=[9000.0])
    assert stats.median_ms == pytest.approx(2.0)
    assert stats.first_inference_us == 9000.0 and stats.min_us == 1000.0 and stats.max_us == 3000.0
    assert stats_from_samples([], init_us=0.0, warmup_us=[]).count == 0


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.float32, np.bool_])
def test_random_tensor_has_the_shape_dtype_and_range(dtype: type) -> None:
    x = random_tensor((1, -1, 3), np.dtype(dtype), np.random.default_rng(0))
    assert x.shape == (1, 1, 3) and x.dtype == np.dtype(dtype)
    if np.dtype(dtype).kind == "f":
        assert np.all((x >= -1.0) & (x < 1.0))
