"""Push/pull throughput through the emulated Android device and the real adb server.

Pushes a file of ``--mb`` MiB to ``/data/local/tmp`` ``--repeats`` times with adbutils' sync client (what
``AdbDevice.push_bundle`` uses) and with the ``adb push`` command line, pulls it back the same two ways,
and prints the median MB/s of each. Target (issue 5): push >= 50 MB/s through the emulated device.
The machine is shared, so the medians move with the load; adbutils sends 4 KiB DATA chunks and is the
slower client.

    python benchmarks/emulator_push.py [--mb 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import adbutils

from harness.devices.adb_server import private_adb_server
from harness.emulator import EmulatedDevice, adb_binary

REMOTE = "/data/local/tmp/bench.bin"


def _rate(size_mb: float, action: Callable[[], object], repeats: int) -> float:
    """Median MB/s (1 MB = 2**20 bytes) of ``repeats`` runs of ``action``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        rates.append(size_mb / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="file size in MiB")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    adb = adb_binary()
    # a private adb server (stopped at the end): the user's own on 5037 is left alone
    with (
        private_adb_server(),
        tempfile.TemporaryDirectory() as tmp,
        EmulatedDevice("generic-phone") as device,
    ):
        source = Path(tmp) / "bench.bin"
        source.write_bytes(os.urandom(args.mb * 2**20))
        pulled = Path(tmp) / "pulled.bin"
        handle = adbutils.AdbClient().device(device.serial)

        def cli(*command: str) -> None:
            subprocess.run([adb, "-s", device.serial, *command], check=True, capture_output=True)

        rates = {
            "push (adbutils sync)": _rate(args.mb, lambda: handle.sync.push(source, REMOTE), args.repeats),
            "pull (adbutils sync)": _rate(args.mb, lambda: handle.sync.pull(REMOTE, pulled), args.repeats),
            "push (adb push)": _rate(args.mb, lambda: cli("push", str(source), REMOTE), args.repeats),
            "pull (adb pull)": _rate(args.mb, lambda: cli("pull", REMOTE, str(pulled)), args.repeats),
        }
        assert pulled.stat().st_size == source.stat().st_size
    print(f"emulated device, {args.mb} MiB file, median of {args.repeats} runs (MB = 2**20 bytes)")
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:8.1f} MB/s")
    worst_push = min(rates["push (adbutils sync)"], rates["push (adb push)"])
    print(
        f"  slowest push / target 50 MB/s = {worst_push / 50:.2f}  ({'meets' if worst_push >= 50 else 'MISSES'} target)"
    )


if __name__ == "__main__":
    main()
