"""Cost of one all-mobile device stage on the emulated phone, three ways, through the real adb server.

* ``chain runner``: ``jointdnn_chain_runner`` runs every segment in one process (.npy in and out);
* ``benchmark_model per segment``: the stock tool once per segment, in one ``sh -c`` line (what
  :meth:`AdbDevice.run_chain` does when the chain runner is absent);
* ``benchmark_model fused``: the stock tool once on the fused range (``whole.tflite`` for the full chain).

Every variant uses one run and no warm-up (``--num_runs=1 --warmup_runs=0 --min_secs=0
--warmup_min_secs=0``), so the figures are what a split run pays per stage: wall time of the call (push
of the input, the command, pull of the output) and the compute the runner reports. Prints medians and
the ratios to the chain runner, measured in one process; the machine is shared, so absolute numbers move
with its load.

    python benchmarks/split_stage.py [--model small_cnn] [--quant fp32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.devices.adb import BENCHMARK_REMOTE, AdbDevice
from harness.devices.adb_server import private_adb_server
from harness.devices.benchmark_output import parse_benchmark_output
from harness.devices.split_run import SegmentCall, input_tensor_name, parse_stage_output, stage_command
from harness.emulator import EmulatedDevice
from models.bundle import read_manifest
from models.export import export_bundle


def _fused(device: AdbDevice, bundle: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    """One benchmark_model invocation on whole.tflite; (output, reported compute ms)."""
    manifest = read_manifest(bundle)
    push = device.push_bundle(bundle)
    assert manifest.whole_file and manifest.whole_sha256
    tag = uuid.uuid4().hex[:8]
    source, target = f"{push.remote_dir}/in_{tag}.bin", f"{push.remote_dir}/out_{tag}.bin"
    device.push_file(np.ascontiguousarray(x).tobytes(), source)
    call = SegmentCall(
        index=0,
        graph=push.path(manifest.whole_file),
        input_name=input_tensor_name(str(bundle / manifest.whole_file), manifest.whole_sha256),
        input_shape=list(manifest.segments[0].input.shape),
        input_path=source,
        output_path=target,
    )
    result = device.shell(["sh", "-c", stage_command(BENCHMARK_REMOTE, [call], threads=1, warmup_runs=0)])
    assert result.exit_code == 0, result.output[-400:]
    ms = parse_benchmark_output(parse_stage_output(result.stdout, [0])[0]).mean_ms
    out = manifest.segments[-1].output
    y = np.frombuffer(device.pull_bytes(target), dtype=np.dtype(out.dtype)).reshape(out.shape)
    device.shell(["rm", "-f", source, target])
    return y, ms


def _time(action: Callable[[], tuple[np.ndarray, float]], repeats: int) -> tuple[float, float, np.ndarray]:
    walls, computes = [], []
    output = np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        output, compute_ms = action()
        walls.append((time.perf_counter() - started) * 1e3)
        computes.append(compute_ms)
    return statistics.median(walls), statistics.median(computes), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--quant", default="fp32")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, private_adb_server(), EmulatedDevice("generic-phone") as phone:
        bundle = Path(tmp) / f"{args.model}-{args.quant}"
        manifest = export_bundle(args.model, args.quant, bundle)
        n = manifest.num_segments
        x = np.random.default_rng(0).standard_normal(manifest.segments[0].input.shape).astype(np.float32)
        if args.quant == "int8":
            from models.runtime import SegmentChain

            x = SegmentChain(bundle).prepare_input(x)
        device = AdbDevice(phone.serial)
        device.push_bundle(bundle)

        def chain(kind: str) -> Callable[[], tuple[np.ndarray, float]]:
            def run() -> tuple[np.ndarray, float]:
                device._split_runner = kind  # force the variant (normally decided from --help)
                result = device.run_chain(bundle, list(range(n)), x, warmup_runs=0)
                return np.asarray(result.output), float(sum(result.segment_ms))

            return run

        variants = {
            "chain runner": chain("jointdnn_chain_runner"),
            f"benchmark_model per segment ({n} calls)": chain("benchmark_model"),
            "benchmark_model fused (whole.tflite)": lambda: _fused(device, bundle, x),
        }
        results = {name: _time(action, args.repeats) for name, action in variants.items()}
        base_wall, base_compute, base_out = results["chain runner"]
        print(
            f"{args.model} {args.quant}, {n} segments, median of {args.repeats} (machine shared with other jobs)"
        )
        print(f"{'variant':44s} {'wall ms':>9s} {'x chain':>8s} {'compute ms':>11s} {'x chain':>8s}  output")
        for name, (wall, compute, out) in results.items():
            same = (
                "same" if np.array_equal(out, base_out) else f"max|diff| {np.abs(out - base_out).max():.2g}"
            )
            print(
                f"{name:44s} {wall:9.1f} {wall / base_wall:8.2f} {compute:11.2f} {compute / base_compute:8.2f}  {same}"
            )


if __name__ == "__main__":
    main()
