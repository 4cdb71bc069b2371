"""Reports from CSVs alone: the summary's arithmetic, the plots and index, and `jointdnn report`."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.reports import build_report, summarize
from harness.reports.schema import LINKS_COLUMNS, MEASUREMENT_COLUMNS, PLAN_COLUMNS, SUMMARY_COLUMNS
from models.errors import UsageError

# A 2-segment model on one link: schedules MM (mobile-only), CM, MC, CC (cloud-only).
PREDICTED = {"MM": (40.0, 60.0), "MC": (30.0, 45.0), "CC": (50.0, 20.0), "CM": (70.0, 35.0)}  # ms, mJ
MEASURED = {"MM": (42.0, 63.0), "MC": (27.0, 40.0), "CC": (55.0, 22.0), "CM": (75.0, 30.0)}


def _plan(kind: str, objective: str, schedule: str, cut: int) -> dict[str, object]:
    latency, energy = PREDICTED[schedule]
    row = dict.fromkeys(PLAN_COLUMNS, 0.0)
    row.update(
        run_id="r", model="toy", quant="int8", device="phone", link="4g", objective=objective, kind=kind,
        schedule=schedule, cut=cut, cuts="", solver="test", constraints="{}", feasible=True, error="",
        pred_latency_ms=latency, pred_mobile_energy_mj=energy,
    )  # fmt: skip
    return row


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    plans = [_plan("single_cut", "any", s, k) for k, s in enumerate(["CC", "MC", "MM"])]
    for objective, chosen in (("latency", "MC"), ("energy", "CC")):
        plans.append(_plan("jointdnn", objective, chosen, -1))
        plans.append(_plan("mobile_only", objective, "MM", 2))
        plans.append(_plan("cloud_only", objective, "CC", 0))
        plans.append(_plan("best_single_cut", objective, chosen, 1 if chosen == "MC" else 0))
    rows = []
    for schedule, (latency, energy) in MEASURED.items():
        for repeat, jitter in enumerate((0.9, 1.0, 1.3)):  # median = the value itself
            row = dict.fromkeys(MEASUREMENT_COLUMNS, 1.0)
            row.update(
                run_id="r", model="toy", quant="int8", device="phone", link="4g", shaping="tc-netem",
                schedule=schedule, repeat=repeat, latency_ms=latency * jitter,
                mobile_energy_mj=energy * jitter, output_matches=True, argmax_matches=True,
            )  # fmt: skip
            rows.append(row)
    link = dict.fromkeys(LINKS_COLUMNS, 1.0)
    link.update(link="4g", shaping="tc-netem", note="", up_mbps=5.8, down_mbps=13.5, rtt_ms=51.0)
    links = [link]
    return pd.DataFrame(plans), pd.DataFrame(rows), pd.DataFrame(links)


def test_summary_ratios_and_regret() -> None:
    frame = summarize(*_frames())
    assert list(frame.columns) == SUMMARY_COLUMNS
    summary = frame.set_index("objective")
    lat = summary.loc["latency"]
    assert lat["schedule"] == "MC"
    assert lat["meas_latency_ms"] == pytest.approx(27.0)
    assert lat["latency_error_pct"] == pytest.approx((27 - 30) / 27 * 100)
    assert lat["speedup_vs_mobile_only"] == pytest.approx(42 / 27)
    assert lat["speedup_vs_cloud_only"] == pytest.approx(55 / 27)
    assert lat["regret"] == pytest.approx(1.0)  # MC is the best measured single cut
    energy = summary.loc["energy"]
    assert energy["schedule"] == "CC"
    assert energy["energy_saving_vs_mobile_only"] == pytest.approx(63 / 22)
    assert energy["best_measured_schedule"] == "CC"
    assert bool(energy["outputs_match"]) is True


def test_regret_above_one_when_a_baseline_measured_better() -> None:
    plans, measurements, links = _frames()
    plans.loc[(plans["kind"] == "jointdnn") & (plans["objective"] == "latency"), "schedule"] = "CM"
    summary = summarize(plans, measurements, links).set_index("objective")
    assert summary.loc["latency", "regret"] == pytest.approx(75 / 27)
    assert summary.loc["latency", "best_measured_schedule"] == "MC"


def _write_run(run_dir: Path) -> None:
    plans, measurements, links = _frames()
    run_dir.mkdir(parents=True)
    plans.to_csv(run_dir / "plans.csv", index=False)
    measurements.to_csv(run_dir / "measurements.csv", index=False)
    links.to_csv(run_dir / "links.csv", index=False)


def test_build_report_writes_summary_plots_and_index(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _write_run(run_dir)
    report = build_report(run_dir)
    names = {p.name for p in report.plots}
    assert {
        "latency_vs_split.png",
        "energy_vs_split.png",
        "predicted_vs_measured.png",
        "breakdown.png",
    } <= names
    for plot in report.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    index = report.index.read_text()
    assert "![" in index and "latency_vs_split.png" in index and "| 4g | latency | MC |" in index
    summary = pd.read_csv(run_dir / "summary.csv")
    assert len(summary) == 2 and not math.isnan(summary["regret"].iloc[0])


def test_report_command_rebuilds_from_csvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    _write_run(run_dir)
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "index.md").is_file() and (run_dir / "summary.csv").is_file()
    assert "index.md" in capsys.readouterr().out


def test_report_of_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        build_report(tmp_path / "nope")
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_names_a_missing_column(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _write_run(run_dir)
    pd.read_csv(run_dir / "plans.csv").drop(columns=["pred_latency_ms"]).to_csv(
        run_dir / "plans.csv", index=False
    )
    with pytest.raises(UsageError, match="pred_latency_ms"):
        build_report(run_dir)


def test_outcomes_lead_with_regime_gain_and_error() -> None:
    from harness.reports.summary import compact_schedule, outcomes, prediction_errors

    assert compact_schedule("MMMMCCC") == "M4 C3" and compact_schedule("CCCC+jpeg") == "C4 jpeg"
    plans, measurements, links = _frames()
    view = outcomes(summarize(plans, measurements, links)).set_index("objective")
    assert view.loc["latency", "regime"] == "split" and view.loc["energy", "regime"] == "cloud-only"
    assert view.loc["latency", "vs_mobile"] == pytest.approx(42 / 27)  # in the goal's own metric
    assert view.loc["energy", "vs_mobile"] == pytest.approx(63 / 22) and view.loc["energy", "unit"] == "mJ"
    assert view.loc["energy", "error_pct"] == pytest.approx((22 - 20) / 22 * 100)
    errors = prediction_errors(plans, measurements).iloc[0]
    assert errors["schedules"] == 3  # CC, MC, MM were planned and executed (CM was not planned)
    lat = sorted(abs(m - p) / m * 100 for m, p in ((42, 40), (27, 30), (55, 50)))
    assert errors["latency_err_median_pct"] == pytest.approx(lat[1])


def test_measured_sweep_plot_needs_four_uplinks(tmp_path: Path) -> None:
    from harness.reports.sweep import plot_measured_sweep

    plans, measurements, links = _frames()
    assert plot_measured_sweep(plans, measurements, links, tmp_path / "one.png") is None
    many_p, many_m, many_l = [], [], []
    for i, mbps in enumerate((0.5, 2.0, 8.0, 32.0)):
        name = f"4g-up{mbps:g}"
        p, m, link = plans.copy(), measurements.copy(), links.copy()
        p["link"], m["link"], link["link"] = name, name, name
        m["latency_ms"] *= 1 + i  # any shape will do
        link["target_up_mbps"], link["up_mbps"] = mbps, mbps
        jpeg = p[p["kind"] == "cloud_only"].assign(kind="cloud_only_jpeg")
        many_p += [p, jpeg]
        many_m.append(m)
        many_l.append(link)
    path = plot_measured_sweep(
        pd.concat(many_p), pd.concat(many_m), pd.concat(many_l), tmp_path / "sweep.png", "toy"
    )
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_terminal_summary_fits_80_columns_and_index_leads_with_the_answer(tmp_path: Path) -> None:
    from rich.console import Console

    from harness.cli.run_cmd import summary_table

    run_dir = tmp_path / "20261202T000000Z-resnet50_butterfly_pool1_pool_c4s2-int8-int8-12345"
    _write_run(run_dir)
    report = build_report(run_dir)
    console = Console(width=80, record=True)
    console.print(summary_table(run_dir))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "latency" in text and "energy" in text and "M1 C1" in text  # goals and plans in full
    index = report.index.read_text()
    assert index.index("## The answer") < index.index("## Links")
    assert "**split** on 4g (M1 C1: 27 ms; x1.56 vs mobile-only" in index
    assert "How far to trust the predictions" in index
