"""``summary.csv``: per link x objective, the planner's choice predicted vs measured, and the baselines.

Measured values are medians over the repeats of a schedule. Speedups are ratios of measured medians
(``speedup_vs_cloud_only = cloud-only latency / plan latency``; ``energy_saving_vs_* `` the same for
mobile energy). ``regret`` = the plan's measured objective / the best measured objective among every
single cut and baseline (1.0 = the planner picked the best; the planner's own schedule is not a
candidate unless it is one of them). Error percentages are ``(measured - predicted) / measured``.
``regime``: where the chosen schedule runs (``mobile-only``, ``cloud-only``, ``split``);
``*_cloud_only_jpeg``: against cloud-only uploading the photo as a JPEG, a real app's status quo.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import pandas as pd

from harness.reports.schema import SUMMARY_COLUMNS, SummaryRow

__all__ = [
    "OUTCOME_COLUMNS",
    "compact_schedule",
    "measured_medians",
    "outcomes",
    "prediction_errors",
    "regime",
    "summarize",
]

_METRIC = {"latency": "latency_ms", "energy": "mobile_energy_mj"}


def measured_medians(measurements: pd.DataFrame) -> pd.DataFrame:
    """Per (link, schedule): median latency/energy/breakdown, p10/p90 latency, all outputs matched."""
    if measurements.empty:
        return pd.DataFrame()
    grouped = measurements.groupby(["link", "schedule"], sort=False)
    medians = grouped[
        [
            "latency_ms",
            "mobile_energy_mj",
            "device_compute_ms",
            "upload_ms",
            "queue_ms",
            "server_ms",
            "download_ms",
            "device_overhead_ms",
        ]
    ].median()
    medians["latency_p10_ms"] = grouped["latency_ms"].quantile(0.1)
    medians["latency_p90_ms"] = grouped["latency_ms"].quantile(0.9)
    medians["energy_p10_mj"] = grouped["mobile_energy_mj"].quantile(0.1)
    medians["energy_p90_mj"] = grouped["mobile_energy_mj"].quantile(0.9)
    medians["outputs_match"] = grouped["output_matches"].all()
    medians["runs"] = grouped.size()
    return medians


def regime(schedule: str) -> str:
    """``mobile-only``, ``cloud-only`` or ``split`` for a schedule label (``""`` if there is none)."""
    letters = schedule.split("+")[0] if isinstance(schedule, str) else ""
    if not letters:
        return ""
    if set(letters) == {"M"}:
        return "mobile-only"
    return "cloud-only" if set(letters) == {"C"} else "split"


def _pct(measured: float, predicted: float) -> float:
    return (measured - predicted) / measured * 100 if measured else math.nan


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def summarize(plans: pd.DataFrame, measurements: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Build the summary frame (one :class:`~harness.reports.schema.SummaryRow` per link x objective)."""
    medians = measured_medians(measurements)
    link_info = links.set_index("link") if not links.empty else pd.DataFrame()
    rows: list[SummaryRow] = []

    def med(link: str, schedule: str, column: str) -> float:
        key = (link, schedule)
        if not schedule or medians.empty or key not in medians.index:
            return math.nan
        return float(medians.at[key, column])  # type: ignore[arg-type]

    for _, chosen in plans[plans["kind"] == "jointdnn"].iterrows():
        link, objective = str(chosen["link"]), str(chosen["objective"])
        metric = _METRIC.get(objective, "latency_ms")
        same = plans[(plans["link"] == link) & (plans["objective"] == objective)]
        kinds = {str(r["kind"]): str(r["schedule"]) for _, r in same.iterrows()}
        schedule = str(chosen["schedule"]) if isinstance(chosen["schedule"], str) else ""
        candidates = set(plans[(plans["link"] == link) & (plans["kind"] == "single_cut")]["schedule"])
        candidates |= {
            kinds.get(k, "") for k in ("mobile_only", "cloud_only", "best_single_cut", "cloud_only_jpeg")
        }
        scored = {c: med(link, c, metric) for c in candidates if c}
        scored = {c: v for c, v in scored.items() if math.isfinite(v)}
        best = min(scored, key=lambda c: scored[c]) if scored else ""
        info: Any = link_info.loc[link] if link in link_info.index else {}
        lat, energy = med(link, schedule, "latency_ms"), med(link, schedule, "mobile_energy_mj")
        mob, cloud, single = (
            kinds.get("mobile_only", ""),
            kinds.get("cloud_only", ""),
            kinds.get("best_single_cut", ""),
        )
        jpeg = kinds.get("cloud_only_jpeg", "")
        match_key = (link, schedule)
        rows.append(
            SummaryRow(
                link=link,
                objective=objective,
                shaping=info.get("shaping", ""),
                achieved_up_mbps=info.get("up_mbps", math.nan),
                achieved_down_mbps=info.get("down_mbps", math.nan),
                achieved_rtt_ms=info.get("rtt_ms", math.nan),
                schedule=schedule,
                cuts=chosen["cuts"],
                pred_latency_ms=chosen["pred_latency_ms"],
                meas_latency_ms=lat,
                latency_error_pct=_pct(lat, float(chosen["pred_latency_ms"])),
                pred_energy_mj=chosen["pred_mobile_energy_mj"],
                meas_energy_mj=energy,
                energy_error_pct=_pct(energy, float(chosen["pred_mobile_energy_mj"])),
                mobile_only_latency_ms=med(link, mob, "latency_ms"),
                cloud_only_latency_ms=med(link, cloud, "latency_ms"),
                best_single_cut_schedule=single,
                best_single_cut_latency_ms=med(link, single, "latency_ms"),
                mobile_only_energy_mj=med(link, mob, "mobile_energy_mj"),
                cloud_only_energy_mj=med(link, cloud, "mobile_energy_mj"),
                best_single_cut_energy_mj=med(link, single, "mobile_energy_mj"),
                speedup_vs_mobile_only=_ratio(med(link, mob, "latency_ms"), lat),
                speedup_vs_cloud_only=_ratio(med(link, cloud, "latency_ms"), lat),
                energy_saving_vs_mobile_only=_ratio(med(link, mob, "mobile_energy_mj"), energy),
                energy_saving_vs_cloud_only=_ratio(med(link, cloud, "mobile_energy_mj"), energy),
                best_measured_schedule=best,
                regret=_ratio(med(link, schedule, metric), scored.get(best, math.nan)),
                outputs_match=bool(medians.loc[match_key, "outputs_match"])
                if not medians.empty and match_key in medians.index
                else False,
                regime=regime(schedule),
                cloud_only_jpeg_latency_ms=med(link, jpeg, "latency_ms"),
                cloud_only_jpeg_energy_mj=med(link, jpeg, "mobile_energy_mj"),
                speedup_vs_cloud_only_jpeg=_ratio(med(link, jpeg, "latency_ms"), lat),
                energy_saving_vs_cloud_only_jpeg=_ratio(med(link, jpeg, "mobile_energy_mj"), energy),
            )
        )
    return pd.DataFrame([asdict(r) for r in rows], columns=SUMMARY_COLUMNS)


def compact_schedule(schedule: str) -> str:
    """``MMMMCCC`` -> ``M4 C3`` (run lengths), ``CCCC+jpeg`` -> ``C4 jpeg``: long schedules fit a line."""
    if not isinstance(schedule, str) or not schedule:
        return "infeasible"
    letters, _, codec = schedule.partition("+")
    runs: list[tuple[str, int]] = []
    for letter in letters:
        if runs and runs[-1][0] == letter:
            runs[-1] = (letter, runs[-1][1] + 1)
        else:
            runs.append((letter, 1))
    return " ".join([*(f"{letter}{count}" for letter, count in runs), *([codec] if codec else [])])


# One row per link x objective, in the objective's own metric (latency ms or mobile energy mJ):
OUTCOME_COLUMNS: list[str] = [
    "link",
    "objective",
    "regime",  # mobile-only | cloud-only | split
    "plan",  # compact schedule
    "measured",  # the plan's measured median (ms or mJ)
    "unit",
    "error_pct",  # (measured - predicted) / measured of that metric
    "vs_mobile",  # mobile-only / plan (measured); > 1: the plan is better
    "vs_jpeg",  # cloud-only with the JPEG input / plan (measured; the raw cloud-only if no JPEG row)
    "regret",  # plan / best measured candidate
]


def outcomes(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as answers: per link x objective, the regime, the gain over each status quo and the
    prediction error, all in the objective's metric (what the terminal table and the index lead with)."""
    rows = []
    for _, r in summary.iterrows():
        energy = r["objective"] == "energy"
        jpeg = r.get("energy_saving_vs_cloud_only_jpeg" if energy else "speedup_vs_cloud_only_jpeg", math.nan)
        if not isinstance(jpeg, float) or not math.isfinite(jpeg):
            jpeg = r["energy_saving_vs_cloud_only" if energy else "speedup_vs_cloud_only"]
        rows.append(
            {
                "link": r["link"],
                "objective": r["objective"],
                "regime": r.get("regime", "") or regime(str(r["schedule"])),
                "plan": compact_schedule(r["schedule"]),
                "measured": r["meas_energy_mj" if energy else "meas_latency_ms"],
                "unit": "mJ" if energy else "ms",
                "error_pct": r["energy_error_pct" if energy else "latency_error_pct"],
                "vs_mobile": r["energy_saving_vs_mobile_only" if energy else "speedup_vs_mobile_only"],
                "vs_jpeg": jpeg,
                "regret": r["regret"],
            }
        )
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


def prediction_errors(plans: pd.DataFrame, measurements: pd.DataFrame) -> pd.DataFrame:
    """How far predictions are from measurement, per link, over every executed schedule.

    Columns: ``link``, ``schedules``, and for latency and mobile energy the median and 90th percentile
    of ``|measured - predicted| / measured`` in % (measured = median over the repeats).
    """
    medians = measured_medians(measurements)
    columns = ["link", "schedules", "latency_err_median_pct", "latency_err_p90_pct",
               "energy_err_median_pct", "energy_err_p90_pct"]  # fmt: skip
    if medians.empty or plans.empty:
        return pd.DataFrame(columns=columns)
    predicted = plans[plans["schedule"].astype(str) != ""].drop_duplicates(["link", "schedule"])
    joined = predicted.merge(medians.reset_index(), on=["link", "schedule"])
    joined["lat_err"] = ((joined["latency_ms"] - joined["pred_latency_ms"]) / joined["latency_ms"]).abs() * 100
    joined["en_err"] = (
        (joined["mobile_energy_mj"] - joined["pred_mobile_energy_mj"]) / joined["mobile_energy_mj"]
    ).abs() * 100
    rows = [
        [link, len(g), g["lat_err"].median(), g["lat_err"].quantile(0.9), g["en_err"].median(),
         g["en_err"].quantile(0.9)]
        for link, g in joined.groupby("link", sort=False)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
