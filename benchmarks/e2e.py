"""End-to-end accuracy of the planner's predictions and the regret of its choices, with no rescaling.

Runs ``jointdnn run`` (emulated Android device through the real adb server, local uvicorn, links shaped
with tc when privileged; planning from the profiles and the link measurement only, no ``--calibrate``)
on each model over 3G, 4G and Wi-Fi — or reads existing run directories — and prints per model x link:

* median and 90th percentile of ``|measured - predicted| / measured`` end-to-end latency over **every**
  executed schedule (every single cut, the baselines and the plans; targets <= 10 % / <= 20 %), and
  the same for mobile energy;
* the regret of the planner's choice = its measured latency (energy) / the best measured latency
  (energy) among every executed schedule of the link (target <= 1.05), per objective;
* the diagnostic rescale factors (``needed_*_scale`` in links.csv): what a per-link rescaling with the
  mobile-only / cloud-only executions would have needed — reported, not applied (target 0.9-1.1).

    python benchmarks/e2e.py                                     # mobilenet_v2, resnet50, small_cnn (int8)
    python benchmarks/e2e.py --models small_cnn --links wifi --repeats 3
    python benchmarks/e2e.py --run-dir reports/<run-id> --run-dir reports/<other>   # existing runs
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# `python benchmarks/e2e.py` puts benchmarks/ first on sys.path, where benchmarks/server.py would shadow
# the `server` package: drop it (the project itself is installed)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.reports.build import load_run  # noqa: E402
from harness.reports.summary import measured_medians, summarize  # noqa: E402

TARGETS = "targets: |err| median <= 10 %, p90 <= 20 % (latency and energy); regret <= 1.05; scales 0.9-1.1"


def _regret(summary: pd.DataFrame, link: str, objective: str) -> float:
    key = (link, objective)
    return float(summary.loc[key, "regret"]) if key in summary.index else float("nan")


def accuracy(plans: pd.DataFrame, measurements: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Per link: relative latency/energy errors over every executed schedule, the regrets, the scales."""
    medians = measured_medians(measurements).reset_index()
    predicted = plans[plans["schedule"].fillna("") != ""].drop_duplicates(["link", "schedule"])
    joined = medians.merge(predicted, on=["link", "schedule"])
    joined["latency_err"] = (joined["latency_ms"] - joined["pred_latency_ms"]).abs() / joined["latency_ms"]
    joined["energy_err"] = (joined["mobile_energy_mj"] - joined["pred_mobile_energy_mj"]).abs() / joined[
        "mobile_energy_mj"
    ]
    summary = summarize(plans, measurements, links).set_index(["link", "objective"])
    info = links.set_index("link")
    rows = []
    for link, group in joined.groupby("link", sort=False):
        scale = {c: float(info.at[link, c]) if c in info.columns else float("nan") for c in
                 ("needed_mobile_scale", "needed_mobile_energy_scale", "needed_cloud_scale")}  # fmt: skip
        plan = summary.loc[(link, "latency"), "schedule"] if (link, "latency") in summary.index else ""
        rows.append(
            {
                "link": link,
                "schedules": len(group),
                "lat_med_pct": 100 * group["latency_err"].median(),
                "lat_p90_pct": 100 * group["latency_err"].quantile(0.9),
                "energy_med_pct": 100 * group["energy_err"].median(),
                "energy_p90_pct": 100 * group["energy_err"].quantile(0.9),
                "regret_latency": _regret(summary, str(link), "latency"),
                "regret_energy": _regret(summary, str(link), "energy"),
                "mobile_scale": scale["needed_mobile_scale"],
                "energy_scale": scale["needed_mobile_energy_scale"],
                "cloud_scale": scale["needed_cloud_scale"],
                "latency_plan": plan if isinstance(plan, str) else "",
            }
        )
    return pd.DataFrame(rows)


def _compact(schedule: str) -> str:
    """``MMMCC+jpeg`` -> ``M3C2+jpeg``: run lengths of the locations, the input-codec suffix kept."""
    schedule, plus, codec = schedule.partition("+")
    out: list[list[object]] = []
    for letter in schedule:
        if out and out[-1][0] == letter:
            out[-1][1] = int(out[-1][1]) + 1  # type: ignore[call-overload]
        else:
            out.append([letter, 1])
    return "".join(f"{a}{b}" for a, b in out) + plus + codec


def print_table(model: str, run_dir: Path, table: pd.DataFrame) -> None:
    print(f"\n{model}  ({run_dir})")
    print(f"{'link':>5} {'n':>3} {'lat med':>8} {'lat p90':>8} {'mJ med':>7} {'mJ p90':>7} "
          f"{'regret':>7} {'regretE':>8} {'x mob':>6} {'x mJ':>6} {'x cloud':>8}  latency plan")  # fmt: skip
    for r in table.itertuples():
        print(
            f"{r.link:>5} {r.schedules:>3} {r.lat_med_pct:>7.1f}% {r.lat_p90_pct:>7.1f}% "
            f"{r.energy_med_pct:>6.1f}% {r.energy_p90_pct:>6.1f}% {r.regret_latency:>7.3f} "
            f"{r.regret_energy:>8.3f} {r.mobile_scale:>6.2f} {r.energy_scale:>6.2f} {r.cloud_scale:>8.2f}  "
            f"{_compact(str(r.latency_plan))}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", default="mobilenet_v2,resnet50,small_cnn")
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--device", default="emulated")
    parser.add_argument("--device-profile", default="generic-phone")
    parser.add_argument("--links", default="3g,4g,wifi")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--bundles-dir", type=Path, default=Path("bundles"))
    parser.add_argument("--run-dir", type=Path, action="append", help="evaluate existing runs instead")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.monotonic()
    run_dirs: list[Path] = list(args.run_dir or [])
    if not run_dirs:
        from harness.runner.run import RunConfig, run_experiment

        for model in [m for m in args.models.split(",") if m]:
            config = RunConfig(
                model=model,
                quant=args.quant,
                device=args.device,
                device_profile=args.device_profile,
                links=[s for s in args.links.split(",") if s],
                repeats=args.repeats,
                out_dir=args.out,
                bundles_dir=args.bundles_dir,
            )
            run_dirs.append(run_experiment(config).run_dir)
    tables = []
    for run_dir in run_dirs:
        plans, measurements, links = load_run(run_dir)
        table = accuracy(plans, measurements, links)
        model = str(plans["model"].iloc[0]) if not plans.empty else run_dir.name
        print_table(model, run_dir, table)
        tables.append(table.assign(model=model))
    every = pd.concat(tables, ignore_index=True)
    print(f"\nall {len(every)} model x link cells, medians: "
          f"lat med {np.median(every['lat_med_pct']):.1f}%, lat p90 {np.median(every['lat_p90_pct']):.1f}%, "
          f"mJ med {np.median(every['energy_med_pct']):.1f}%, regret {np.nanmedian(every['regret_latency']):.3f}; "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    print(TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
