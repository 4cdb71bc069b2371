"""End-to-end accuracy of the planner's predictions and the regret of its choices, measured in one run.

Runs ``jointdnn run`` (emulated Android device through the real adb server, local uvicorn, links shaped
with tc when privileged) on a model over 3G, 4G and Wi-Fi — or reads an existing run directory — and
prints per link:

* ``median |measured - predicted| / measured`` of end-to-end latency over every executed schedule
  (every single cut, the baselines and the plans; target <= 15 %), and the same for mobile energy;
* the regret of the planner's choice = its measured latency / the best measured latency among every
  single cut and baseline schedule (target <= 1.05), and the same for the energy objective.

    python benchmarks/e2e.py                           # mobilenet_v2 int8, 3 repeats
    python benchmarks/e2e.py --model small_cnn --repeats 5
    python benchmarks/e2e.py --run-dir reports/<run-id>   # numbers of an existing run
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

import pandas as pd  # noqa: E402

from harness.reports.build import load_run  # noqa: E402
from harness.reports.summary import measured_medians, summarize  # noqa: E402


def accuracy(plans: pd.DataFrame, measurements: pd.DataFrame) -> pd.DataFrame:
    """Per link: median relative latency/energy error over every executed schedule, and the regrets."""
    medians = measured_medians(measurements).reset_index()
    predicted = plans[plans["schedule"] != ""].drop_duplicates(["link", "schedule"])
    joined = medians.merge(predicted, on=["link", "schedule"])
    joined["latency_rel_err"] = (joined["latency_ms"] - joined["pred_latency_ms"]).abs() / joined[
        "latency_ms"
    ]
    joined["energy_rel_err"] = (joined["mobile_energy_mj"] - joined["pred_mobile_energy_mj"]).abs() / joined[
        "mobile_energy_mj"
    ]
    summary = summarize(plans, measurements, pd.DataFrame(columns=["link"])).set_index(["link", "objective"])
    rows = []
    for link, group in joined.groupby("link", sort=False):
        rows.append(
            {
                "link": link,
                "schedules": len(group),
                "median_latency_err_pct": 100 * group["latency_rel_err"].median(),
                "median_energy_err_pct": 100 * group["energy_rel_err"].median(),
                "latency_plan": summary.loc[(link, "latency"), "schedule"]
                if (link, "latency") in summary.index
                else "",
                "latency_regret": summary.loc[(link, "latency"), "regret"]
                if (link, "latency") in summary.index
                else float("nan"),
                "energy_regret": summary.loc[(link, "energy"), "regret"]
                if (link, "energy") in summary.index
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--device", default="emulated")
    parser.add_argument("--links", default="3g,4g,wifi")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--run-dir", type=Path, help="evaluate an existing run instead of running")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.monotonic()
    run_dir = args.run_dir
    if run_dir is None:
        from harness.runner.run import RunConfig, run_experiment

        config = RunConfig(
            model=args.model,
            quant=args.quant,
            device=args.device,
            links=[s for s in args.links.split(",") if s],
            repeats=args.repeats,
            out_dir=args.out,
        )
        run_dir = run_experiment(config).run_dir
    plans, measurements, links = load_run(run_dir)
    table = accuracy(plans, measurements)
    shaping = dict(zip(links["link"], links["shaping"], strict=True))
    print(f"run: {run_dir}  ({time.monotonic() - started:.0f} s)")
    print(f"{'link':>5} {'shaping':>13} {'n':>3} {'med |err| lat':>14} {'med |err| energy':>17} "
          f"{'regret lat':>11} {'regret energy':>14}  latency plan")  # fmt: skip
    for row in table.itertuples():
        print(
            f"{row.link:>5} {shaping.get(row.link, ''):>13} {row.schedules:>3} {row.median_latency_err_pct:>13.1f}% "
            f"{row.median_energy_err_pct:>16.1f}% {row.latency_regret:>11.3f} {row.energy_regret:>14.3f}  "
            f"{row.latency_plan}"
        )
    print("targets: median |err| latency <= 15 %, regret <= 1.05")
    return 0


if __name__ == "__main__":
    sys.exit(main())
