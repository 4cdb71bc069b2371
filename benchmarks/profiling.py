"""Profiling-job overhead and push throughput through the emulated Android device and the real adb server.

Starts ``jointdnn emulator start`` in its own process (like a phone: the harness does not share a
Python interpreter with it), then measures:

- push throughput: ``AdbDevice.push_file`` of ``--mb`` MiB (64 KiB sync DATA packets), median MB/s;
- harness overhead: a warm-cache profile job (bundle exported and already on the device, so the push
  is skipped; ``force`` remeasures every unit) timed end to end, divided by the sum of the times the
  runner itself accounts for (init + warm-up phase + measured phase of every ``benchmark_model`` run,
  from its own output). Once with the CLI defaults (energy measured: 1 s windows with the battery
  sampled in parallel) and once with ``--no-energy``.

Targets (issue 5): overhead <= 1.25 on the emulated device; push >= 50 MB/s.

    python benchmarks/profiling.py [--model small_cnn] [--quant int8] [--runs 50] [--repeats 3] [--mb 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.devices.adb import AdbDevice
from harness.devices.adb_server import private_adb_server
from harness.profiling import ProfileSettings, export_for_profiling, profile_device


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """Run the emulated device in a child process; returns it and its adb serial."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "emulator", "start", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    serial = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            serial = line.rsplit(" ", 1)[-1].strip()
        if "registered" in line or "press Ctrl-C" in line:
            break
    if not serial:
        proc.kill()
        raise SystemExit("the emulated device did not start")
    return proc, serial


def push_rate(device: AdbDevice, size_mb: int, repeats: int) -> float:
    """Median MB/s (MiB/s) of pushing ``size_mb`` MiB of random bytes."""
    payload = os.urandom(size_mb << 20)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        device.push_file(payload, "/data/local/tmp/push_bench.bin")
        rates.append(size_mb / (time.perf_counter() - t0))
    device.shell(["rm", "-f", "/data/local/tmp/push_bench.bin"])
    return statistics.median(rates)


def job_overhead(device: AdbDevice, bundle: Path, out: Path, settings: ProfileSettings, repeats: int) -> None:
    """Print wall / runner time of ``repeats`` warm-cache jobs and their median."""
    ratios = []
    for _ in range(repeats):
        result = profile_device(device, bundle, settings, out_root=out)
        assert result.push is None or result.push.pushed == [], "cache not warm: files were pushed"
        ratios.append(result.wall_s / result.runner_s)
        print(
            f"    job: wall {result.wall_s:6.2f} s, runner {result.runner_s:6.2f} s, "
            f"{len(result.measured)} units, ratio {ratios[-1]:.3f}"
        )
    print(f"  harness overhead (median of {repeats}): {statistics.median(ratios):.3f}  (target <= 1.25)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()

    # a private adb server (stopped at the end): the user's own on 5037 is left alone
    with private_adb_server(), tempfile.TemporaryDirectory() as tmp:
        bundle = export_for_profiling(args.model, args.quant, Path(tmp) / "bundles")
        proc, serial = start_emulator()
        try:
            device = AdbDevice(serial)
            print(f"emulated device {serial} ({device.facts().model}), {args.model} {args.quant}")
            rate = push_rate(device, args.mb, args.repeats)
            print(
                f"push throughput ({args.mb} MiB, median of {args.repeats}): {rate:.1f} MB/s  (target >= 50)"
            )
            device.push_bundle(bundle)  # warm: the bundle is on the device
            out = Path(tmp) / "profiles"
            for label, energy in (("CLI defaults (energy measured)", True), ("--no-energy", False)):
                settings = ProfileSettings(runs=args.runs, measure_energy=energy, force=True, backward=False)
                print(f"{label}: runs={args.runs}, warm-up >= 0.5 s{', energy window 1 s' if energy else ''}")
                job_overhead(AdbDevice(serial), bundle, out, settings, args.repeats)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
