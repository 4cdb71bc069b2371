"""Cost of the device-state snapshots the profiling job takes before and after every unit.

Starts ``jointdnn emulator start`` in its own process (like a phone) and measures, in one run:

- a snapshot (``AdbDevice.device_state``: one ``sh -c "grep '' <cpufreq, thermal, power-supply files>"``)
  against the cheapest adb shell round trip (``true``): median ms of each and their ratio;
- a warm-cache profile job (``force``: every unit remeasured, energy off) with telemetry against the
  same job with the capability switched off: median wall time of each and their ratio.

    python benchmarks/telemetry.py [--model small_cnn] [--quant fp32] [--repeats 30] [--jobs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from profiling import start_emulator

from harness.devices.adb import AdbDevice
from harness.devices.adb_server import private_adb_server
from harness.devices.base import DeviceCapabilities
from harness.profiling import ProfileSettings, export_for_profiling, profile_device


class BlindAdbDevice(AdbDevice):
    """The same device without telemetry (the baseline job)."""

    @property
    def capabilities(self) -> DeviceCapabilities:
        return DeviceCapabilities(backward=False, battery=True, telemetry=False)


def median_ms(action: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--quant", default="fp32")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=3)
    args = parser.parse_args()
    with private_adb_server(), tempfile.TemporaryDirectory() as tmp:
        proc, serial = start_emulator()
        try:
            device = AdbDevice(serial)
            snapshot = median_ms(device.device_state, args.repeats)
            round_trip = median_ms(lambda: device.shell(["true"]), args.repeats)
            print(
                f"snapshot {snapshot:.1f} ms, `true` round trip {round_trip:.1f} ms, ratio {snapshot / round_trip:.2f}"
            )
            bundle = export_for_profiling(args.model, args.quant, Path(tmp) / "bundles")
            settings = ProfileSettings(runs=20, measure_energy=False, backward=False, force=True)
            walls: dict[str, list[float]] = {"telemetry": [], "none": []}
            for _ in range(args.jobs):  # interleaved, so load drift hits both alike
                for name, dev in (("telemetry", device), ("none", BlindAdbDevice(serial))):
                    result = profile_device(dev, bundle, settings, out_root=Path(tmp) / name)
                    walls[name].append(result.wall_s)
            units = len(result.rows)
            with_t, without = statistics.median(walls["telemetry"]), statistics.median(walls["none"])
            print(
                f"job ({units} units): {with_t:.2f} s with telemetry, {without:.2f} s without, "
                f"ratio {with_t / without:.3f} ({(with_t - without) / units * 1e3:.0f} ms per unit)"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
