"""Benchmark the segment chain of MobileNetV2 and ResNet-50 (fp32 and int8).

For each model and quantization it prints: the number of segments, the cold export time of all
segments (empty artifact cache: every segment converted), the warm export time (same segments again:
every one a cache hit), and sum(segment latencies) / whole-model latency on LiteRT with one thread.

Targets (issue 2): ratio within 0.85-1.15 in all four cases; warm re-export of all ResNet-50 segments
under 1 s. Latencies are medians over interleaved runs (chain, then whole, repeated), so load from
other processes on the machine hits both sides alike.

    python benchmarks/segments.py [--runs 30] [--models mobilenet_v2 resnet50] [--quants fp32 int8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from models.export import STATS, export_bundle
from models.runtime import SegmentChain, SegmentRunner
from models.zoo import build_model


def _latencies(bundle: Path, runs: int) -> tuple[list[float], float]:
    """Median ms of every segment (fed by the chain's real activations) and of whole.tflite."""
    chain = SegmentChain(bundle, num_threads=1)
    whole = SegmentRunner(bundle / "whole.tflite", num_threads=1)
    x = np.random.default_rng(0).random(tuple(chain.manifest.input.shape), dtype=np.float32)
    first_in = chain.prepare_input(x)
    whole_in = first_in  # whole.tflite has the same input tensor as segment 0
    per_segment: list[list[float]] = [[] for _ in range(len(chain))]
    whole_ms: list[float] = []
    for i in range(runs + 3):  # 3 warm-up rounds
        result = chain.run(first_in)
        t0 = time.perf_counter()
        whole.run(whole_in)
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        if i >= 3:
            for k, ms in enumerate(result.segment_ms):
                per_segment[k].append(ms)
            whole_ms.append(elapsed_ms)
    return [statistics.median(v) for v in per_segment], statistics.median(whole_ms)


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
    segment_ms, whole_ms = _latencies(bundle, runs)
    return {
        "segments": manifest.num_segments,
        "converted": converted,
        "cold_export_s": cold_s,
        "warm_export_s": warm_s,
        "sum_segments_ms": sum(segment_ms),
        "whole_ms": whole_ms,
        "ratio": sum(segment_ms) / whole_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measured rounds per model (after 3 warm-up)")
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50"])
    parser.add_argument("--quants", nargs="+", default=["fp32", "int8"])
    args = parser.parse_args()
    header = (
        f"{'model':<13} {'quant':<5} {'segs':>4} {'cold export s':>13} {'warm export s':>13} "
        f"{'sum(seg) ms':>11} {'whole ms':>9} {'ratio':>6}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="jointdnn-bench-") as tmp:
        for name in args.models:
            for quant in args.quants:
                r = bench(name, quant, args.runs, Path(tmp) / f"{name}-{quant}")
                print(
                    f"{name:<13} {quant:<5} {r['segments']:>4.0f} {r['cold_export_s']:>13.1f} "
                    f"{r['warm_export_s']:>13.2f} {r['sum_segments_ms']:>11.1f} {r['whole_ms']:>9.1f} "
                    f"{r['ratio']:>6.3f}",
                    flush=True,
                )
    print("targets: ratio in 0.85-1.15; warm export of all ResNet-50 segments < 1 s")


if __name__ == "__main__":
    main()
