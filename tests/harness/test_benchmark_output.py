"""The benchmark_model parsers on captured output of several TFLite / LiteRT versions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.devices.benchmark_output import parse_benchmark_output, parse_stat_line, parse_summary_line
from models.errors import BenchmarkOutputError

DATA = Path(__file__).parent / "data" / "benchmark_outputs"

# file -> (count, avg_us, median_us or NaN, inference_avg_us, init_us or NaN)
EXPECTED = {
    "tf112_yocto.txt": (50, 137722, math.nan, 137722, 4452),
    "tf115_android_op_profiling.txt": (50, 115062, math.nan, 115062, 1892),
    "tf21_readme_op_profiling.txt": (50, 79732, math.nan, 79760.9, 38467),
    "tf23_android_yolov5.txt": (50, 249684, math.nan, 249684, 16242),
    "tf28_mobilenet_op_profiling.txt": (50, 2.95034e06, math.nan, 2.95034e06, 17187),
    "tf216_info_percentiles.txt": (50, 1.24027e06, 1239807, 1.24027e06, 5579),
    "litert_termux_1000runs.txt": (1000, 63743.2, 51891, 63743.2, 119515),
    "logcat_all_same.txt": (250000, 4, 4, 4, 412),
    "tf_classic_glog.txt": (65, 154048, math.nan, 154047, math.nan),
}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_captured_output_parses_to_the_measured_run(name: str) -> None:
    stats = parse_benchmark_output((DATA / name).read_text())
    count, avg_us, median_us, inference_us, init_us = EXPECTED[name]
    assert stats.count == count
    assert _same(stats.avg_us, avg_us)
    assert _same(stats.median_us, median_us)
    assert _same(stats.inference_avg_us, inference_us)
    assert _same(stats.init_us, init_us)
    assert stats.min_us <= stats.median_ms * 1e3 <= stats.max_us
    assert stats.p10_ms <= stats.median_ms <= stats.p90_ms


def test_every_fixture_is_covered() -> None:
    assert {p.name for p in DATA.glob("*.txt")} == {*EXPECTED, "garbage_failed.txt"}


def test_failed_run_raises_with_the_tools_own_message() -> None:
    with pytest.raises(BenchmarkOutputError, match="Could not open"):
        parse_benchmark_output((DATA / "garbage_failed.txt").read_text())
    with pytest.raises(BenchmarkOutputError, match="<empty>"):
        parse_benchmark_output("")


def test_scientific_notation_and_percentiles_in_one_line() -> None:
    parsed = parse_stat_line(
        "INFO: count=50 first=1.1e+06 curr=1.04176e+06 min=1e6 max=1.2E+06 avg=1.04176e+06 std=2565 "
        "p5=1.0001e+06 median=1.04e+06 p95=1.19e+06"
    )
    assert parsed is not None
    assert parsed["avg_us"] == pytest.approx(1041760.0)
    assert parsed["min_us"] == 1e6
    assert parsed["p95_us"] == pytest.approx(1.19e6)


def test_op_profiling_timings_are_not_a_run() -> None:
    assert parse_stat_line("Timings (microseconds): count=50 first=1 curr=1 min=1 max=1 avg=1 std=0") is None
    assert parse_stat_line("Memory (bytes): count=0") is None
    assert parse_stat_line("Peak memory footprint (MB): init=4.9 overall=138.8") is None


def test_all_same_expands_to_constant_stats() -> None:
    parsed = parse_stat_line("count=100 curr=42(all same)")
    assert parsed == {
        "count": 100.0,
        "curr_us": 42.0,
        "first_us": 42.0,
        "min_us": 42.0,
        "max_us": 42.0,
        "avg_us": 42.0,
        "median_us": 42.0,
        "std_us": 0.0,
    }


def test_summary_line_versions() -> None:
    new = parse_summary_line(
        "Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3.5e+01, Inference (avg): 4"
    )
    assert new == {"init_us": 1, "first_inference_us": 2, "warmup_avg_us": 35, "inference_avg_us": 4}
    old = parse_summary_line("Average inference timings in us: Warmup: 91471, Init: 4108, Inference: 80660.1")
    assert old == {"warmup_avg_us": 91471, "init_us": 4108, "inference_avg_us": 80660.1}
    assert parse_summary_line("Initialized session in 4.452ms") is None


def test_summary_only_output_still_gives_a_latency() -> None:
    stats = parse_benchmark_output(
        "... tflite  : Average inference timings in us: Warmup: 91471, Init: 4108, Inference: 80660.1"
    )
    assert stats.count == 0
    assert stats.median_ms == pytest.approx(80.6601)


def test_stderr_and_stdout_concatenated_in_any_order() -> None:
    stdout = (DATA / "tf216_info_percentiles.txt").read_text()
    stats = parse_benchmark_output("WARNING: stderr noise first\n" + stdout)
    assert stats.median_us == 1239807
    assert "percentiles" in stats.output_format


def test_warmup_phase_is_counted_for_the_runner_time() -> None:
    stats = parse_benchmark_output((DATA / "tf115_android_op_profiling.txt").read_text())
    assert stats.warmup_count == 6
    assert (stats.warmup_min_secs, stats.min_secs) == (0.5, 1.0)
    # init 1892 µs + 6 warm-up runs x 86184.3 µs (>= 0.5 s) + 50 runs x 115062 µs (>= 1 s)
    assert stats.runner_s == pytest.approx((1892 + 6 * 86184.3 + 50 * 115062) / 1e6)
    tiny = parse_benchmark_output((DATA / "logcat_all_same.txt").read_text())
    assert tiny.runner_s == pytest.approx(412e-6 + 0.5 + 1.0, rel=0.01)  # phases bounded by seconds
