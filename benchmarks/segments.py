"""Benchmark the segment chain of MobileNetV2 and ResNet-50 (fp32 and int8).

For each model and quantization it prints: the number of segments, the cold export time of all
segments (empty artifact cache: every segment converted), the warm export time (same segments again:
every one a cache hit), and sum(segment latencies) / whole-model latency on LiteRT with one thread.

Targets (issue 2): ratio within 0.85-1.15 in all four cases; warm re-export of all ResNet-50 segments
under 1 s. Latencies are measured per segment as a device profile measures them (see _latencies), in
the calling thread's CPU time (robust to preemption on a loaded machine); the wall-time ratio too.

    python benchmarks/segments.py [--runs 15] [--models mobilenet_v2 resnet50] [--quants fp32 int8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.export import STATS, export_bundle
from models.runtime import SegmentChain, SegmentRunner
from models.zoo import build_model


def _segment_inputs(chain: SegmentChain, x: np.ndarray) -> list[np.ndarray]:
    """The real input of every segment for float input ``x`` (requantized at int8 boundaries)."""
    inputs = [chain.prepare_input(x)]
    for k in range(len(chain) - 1):
        out = chain.runners[k].run(inputs[k])
        inputs.append(chain.prepare_input(chain.finish_output(out, k + 1), k + 1))
    return inputs


def _invoke(runner: SegmentRunner, x: np.ndarray) -> Callable[[], None]:
    """The bare ``invoke()`` of a runner whose input is already set (what benchmark_model times)."""
    interpreter = runner._interpreter  # the benchmark reaches inside on purpose: no copies timed
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    return interpreter.invoke


def _latencies(bundle: Path, rounds: int, inner: int = 5) -> dict[str, float]:
    """Sum of per-segment latencies / whole-model latency, three ways (ms and ratios).

    Each segment is measured the way profiling measures it on a device (benchmark_model on one
    ``.tflite``): a burst of 2 warm-up and ``inner`` timed runs of the same segment, median of the
    burst. Bursts of all segments and of the whole model alternate for ``rounds`` rounds, and the
    median over rounds is kept, so a load spike hits both sides alike.

    * ``cpu``: thread CPU time of ``invoke()`` (LiteRT with one thread runs on the calling thread),
      immune to preemption by other processes on a shared machine;
    * ``cpu_copy``: thread CPU time of ``SegmentRunner.run`` (adds copying the boundary tensors in
      and out, which the chain pays and the whole model does not);
    * ``wall``: wall time of ``invoke()`` (meaningful only on an idle machine).
    """
    chain = SegmentChain(bundle, num_threads=1)
    whole = SegmentRunner(bundle / "whole.tflite", num_threads=1)
    x = np.random.default_rng(0).random(tuple(chain.manifest.input.shape), dtype=np.float32)
    pairs = [*zip(chain.runners, _segment_inputs(chain, x), strict=True), (whole, chain.prepare_input(x))]
    kinds = ("cpu", "cpu_copy", "wall")
    samples: dict[str, list[list[float]]] = {kind: [[] for _ in pairs] for kind in kinds}
    for _ in range(rounds):
        for j, (runner, inp) in enumerate(pairs):
            invoke = _invoke(runner, inp)
            runner.run(inp)
            runner.run(inp)
            burst: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(inner):
                cpu0 = time.thread_time_ns()
                runner.run(inp)
                burst["cpu_copy"].append((time.thread_time_ns() - cpu0) / 1e6)  # ns -> ms
                wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
                invoke()
                burst["cpu"].append((time.thread_time_ns() - cpu0) / 1e6)
                burst["wall"].append((time.perf_counter_ns() - wall0) / 1e6)
            for kind in kinds:
                samples[kind][j].append(statistics.median(burst[kind]))
    result: dict[str, float] = {}
    for kind in kinds:
        medians = [statistics.median(v) for v in samples[kind]]
        result[f"{kind}_sum_ms"] = sum(medians[:-1])
        result[f"{kind}_whole_ms"] = medians[-1]
        result[f"{kind}_ratio"] = sum(medians[:-1]) / medians[-1]
    return result


def bench(name: str, quant: str, runs: int, work: Path) -> dict[str, float]:
    model = build_model(name)
    cache = work / f"cache-{name}-{quant}"  # empty: a cold export
    before = STATS.conversions
    t0 = time.perf_counter()
    manifest = export_bundle(
        model, quant, work / "cold", cache_dir=cache, include_whole=False, model_name=name
    )
    cold_s = time.perf_counter() - t0
    converted = STATS.conversions - before
    before = STATS.conversions
    t0 = time.perf_counter()
    export_bundle(model, quant, work / "warm", cache_dir=cache, include_whole=False, model_name=name)
    warm_s = time.perf_counter() - t0
    assert STATS.conversions == before, "warm export converted something"
    bundle = work / f"{name}-{quant}"
    export_bundle(
        model, quant, bundle, cache_dir=cache, include_whole=True, model_name=name
    )  # + whole.tflite
    return {
        "segments": manifest.num_segments,
        "converted": converted,
        "cold_export_s": cold_s,
        "warm_export_s": warm_s,
        **_latencies(bundle, runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="measurement rounds per model (5 runs each)")
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50"])
    parser.add_argument("--quants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--work", type=Path, help="keep caches and bundles here (default: a temp dir)")
    args = parser.parse_args()
    header = (
        f"{'model':<13} {'quant':<5} {'segs':>4} {'cold export s':>13} {'warm export s':>13} "
        f"{'cpu sum(seg) ms':>15} {'cpu whole ms':>12} {'cpu ratio':>9} {'+copies ratio':>13} {'wall ratio':>10}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="jointdnn-bench-") as tmp:
        work = args.work or Path(tmp)
        for name in args.models:
            for quant in args.quants:
                r = bench(name, quant, args.runs, work / f"{name}-{quant}")
                print(
                    f"{name:<13} {quant:<5} {r['segments']:>4.0f} {r['cold_export_s']:>13.1f} "
                    f"{r['warm_export_s']:>13.2f} {r['cpu_sum_ms']:>15.1f} {r['cpu_whole_ms']:>12.1f} "
                    f"{r['cpu_ratio']:>9.3f} {r['cpu_copy_ratio']:>13.3f} {r['wall_ratio']:>10.3f}",
                    flush=True,
                )
    print("targets: ratio in 0.85-1.15; warm export of all ResNet-50 segments < 1 s")


if __name__ == "__main__":
    main()
