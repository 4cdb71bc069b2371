"""Adaptive execution on a trace with a bandwidth drop and a server-load spike: adaptive vs static vs oracle.

One run (:func:`harness.adaptive.loop.run_adaptive`) over ``device_profiles/traces/adaptive-experiment.csv``
(Wi-Fi, 3G from 20 s to 40 s, Wi-Fi again, 80 s) with a bounded load generator occupying the server
from 44 s to 60 s, with these policies interleaved request by request in one pass: the adaptive controller
(latency objective), the adaptive controller minimising energy, and every static plan
(``static:planned``: each schedule the planner picks at some row of the trace, plus mobile-only and
cloud-only). Everything is measured; the oracle is computed afterwards from the static policies'
requests (:mod:`harness.adaptive.compare`: per 4-s interval, the best static schedule's measured mean
there). The trace and its load spike repeat ``--loops`` times (2: 160 s). Interleaving matters on a shared machine: policies run one after the other would meet
different loads from other processes.

Prints: adaptive mean latency vs the oracle (target within 10 %) and vs the best static plan (target
>= 1.3x), the same for energy under the energy objective, decision time per request (µs) and the
number of schedule switches. The machine is shared: absolute times include other processes' load,
but every policy ran over the same trace in this one process.

Run: ``python benchmarks/adaptive.py [--model alexnet] [--device local] [--device-profile generic-phone]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

# `python benchmarks/adaptive.py` puts benchmarks/ first on sys.path, where benchmarks/server.py would
# shadow the server package (as in benchmarks/e2e.py)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from harness.adaptive.compare import compare_policies  # noqa: E402
from harness.adaptive.controller import ControllerSettings  # noqa: E402
from harness.adaptive.loop import AdaptiveRunConfig, LoadPhase, run_adaptive  # noqa: E402
from harness.runner.run import RunConfig  # noqa: E402

TRACE = "adaptive-experiment"
LOAD = LoadPhase(start_s=44.0, stop_s=60.0, concurrency=16)
PERIOD_S = 80.0  # the trace's length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--device", default="local")
    parser.add_argument("--device-profile", default="generic-phone")
    parser.add_argument("--shaping", default="auto", choices=["auto", "tc", "pacing"])
    parser.add_argument("--bundles-dir", type=Path, default=Path("bundles"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--interval-s", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=LOAD.concurrency)
    parser.add_argument(
        "--loops", type=int, default=2, help="times the 80-s trace (and its load spike) repeats"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="only print the figures of an existing run"
    )
    args = parser.parse_args()
    if args.run_dir is not None:
        report(pd.read_csv(args.run_dir / "decisions.csv"), args.run_dir, args.interval_s)
        return
    run = RunConfig(
        model=args.model,
        quant=args.quant,
        device=args.device,
        device_profile=args.device_profile,
        links=["wifi"],
        shaping=args.shaping,
        out_dir=args.out,
        bundles_dir=args.bundles_dir,
    )
    config = AdaptiveRunConfig(
        run=run,
        trace=TRACE,
        policies=["adaptive", "adaptive-energy", "static:planned"],
        settings=ControllerSettings(),
        load=[
            LoadPhase(LOAD.start_s + k * PERIOD_S, LOAD.stop_s + k * PERIOD_S, args.concurrency)
            for k in range(args.loops)
        ],
        duration_s=PERIOD_S * args.loops,
    )
    result = run_adaptive(config)
    report(result.decisions, result.run_dir, args.interval_s)


def report(d: pd.DataFrame, run_dir: Path, interval_s: float) -> None:
    """Print the experiment's figures from a run's decisions; write comparison.json next to them."""
    print(f"run: {run_dir}  ({len(d)} requests)")
    latency = compare_policies(d, "latency_ms", interval_s)
    energy = compare_policies(d, "mobile_energy_mj", interval_s)
    print(f"\n{'policy':<40} {'requests':>8} {'mean ms':>9} {'mean mJ':>9}")
    for policy, rows in d.groupby("policy", sort=False):
        print(
            f"{policy:<40} {len(rows):>8} {latency.figures[str(policy)]:>9.1f} "
            f"{energy.figures[str(policy)]:>9.1f}"
        )
    adaptive = d[d["policy"] == "adaptive"]
    adaptive_energy = d[d["policy"] == "adaptive-energy"]
    lat, best_lat = latency.figures["adaptive"], latency.figures[latency.best_static]
    en, best_en = energy.figures["adaptive-energy"], energy.figures[energy.best_static]
    print(f"\noracle (best static per {interval_s:g}-s interval, measured): {latency.oracle:.1f} ms, ")
    print(f"  schedules per interval: {' '.join(latency.oracle_schedules)}")
    print(
        f"latency: adaptive {lat:.1f} ms = {lat / latency.oracle:.3f}x the oracle (target <= 1.10); "
        f"best static {latency.best_static} {best_lat:.1f} ms = {best_lat / lat:.2f}x adaptive (target >= 1.3)"
    )
    print(
        f"energy (energy objective): adaptive-energy {en:.1f} mJ = {en / energy.oracle:.3f}x the oracle "
        f"{energy.oracle:.1f} mJ; best static {energy.best_static} {best_en:.1f} mJ = {best_en / en:.2f}x"
    )
    robust = compare_policies(d, "latency_ms", interval_s, how="median")
    robust_lat = robust.figures["adaptive"]
    print(
        f"(per-interval medians instead of means: adaptive {robust_lat:.1f} ms = "
        f"{robust_lat / robust.oracle:.3f}x the oracle {robust.oracle:.1f} ms; best static {robust.best_static} "
        f"{robust.figures[robust.best_static]:.1f} ms = {robust.figures[robust.best_static] / robust_lat:.2f}x)"
    )
    for name, rows in (("adaptive", adaptive), ("adaptive-energy", adaptive_energy)):
        us = rows["decision_us"]
        hits = rows["cache_hit"].mean() * 100
        print(
            f"{name}: decision time median {us.median():.1f} µs, p99 {us.quantile(0.99):.0f} µs, "
            f"max {us.max():.0f} µs (cache hits {hits:.0f} %); switches {int(rows['switched'].sum())}"
        )
    summary = {
        "run_dir": str(run_dir),
        "latency": latency.__dict__,
        "energy": energy.__dict__,
        "decision_us_median": float(adaptive["decision_us"].median()),
        "switches": int(adaptive["switched"].sum()),
    }
    (run_dir / "comparison.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
