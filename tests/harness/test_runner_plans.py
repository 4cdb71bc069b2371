"""plans.csv rows: every single cut, the planner's choice and the baselines; infeasible budgets recorded."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import pytest

from harness.cli import main
from harness.planner import Constraints, Objective, build_problem, plan
from harness.reports.schema import PLAN_COLUMNS
from harness.runner.run import plan_rows, planning_link
from harness.specs import load_link
from models.profile_rows import ProfileRow


def _frame(latencies: list[float], device: str) -> pd.DataFrame:
    sizes = [400_000, 20_000, 1_000]  # bytes after each segment
    rows = [
        ProfileRow(
            model="toy",
            quant="int8",
            segment=i,
            first_layer=f"l{i}",
            last_layer=f"l{i}",
            out_bytes=b,
            latency_ms_median=ms,
            latency_ms_p10=ms,
            latency_ms_p90=ms,
            runs=10,
            energy_mj=float("nan"),
            power_mw=float("nan"),
            threads=1,
            device=device,
            runtime="litert",
            timestamp="t",
            in_bytes=150_528 if i == 0 else sizes[i - 1],
        )
        for i, (ms, b) in enumerate(zip(latencies, sizes, strict=True))
    ]
    return pd.DataFrame([asdict(r) for r in rows])


@pytest.fixture
def problem():  # type: ignore[no-untyped-def]
    return build_problem(_frame([5.0, 40.0, 2.0], "phone"), _frame([1.0, 4.0, 0.5], "cloud"),
                         planning_link(load_link("4g"), 3.0), "generic-phone")  # fmt: skip


def test_rows_hold_every_single_cut_and_the_plans(problem) -> None:  # type: ignore[no-untyped-def]
    rows = pd.DataFrame(plan_rows(problem, ["latency", "energy"], Constraints(), {"link": "4g"}))
    assert set(PLAN_COLUMNS) - {"run_id", "model", "quant", "device"} <= set(rows.columns)
    singles = rows[rows["kind"] == "single_cut"].sort_values("cut")
    assert singles["schedule"].tolist() == ["CCC", "MCC", "MMC", "MMM"]
    for objective in ("latency", "energy"):
        mine = rows[rows["objective"] == objective].set_index("kind")
        assert mine.loc["jointdnn", "schedule"] == plan(problem, Objective(objective)).label  # type: ignore[arg-type]
        assert mine.loc["mobile_only", "schedule"] == "MMM" and mine.loc["mobile_only", "cut"] == 3
        assert mine.loc["cloud_only", "schedule"] == "CCC" and mine.loc["cloud_only", "cut"] == 0
    assert (rows["pred_latency_ms"] > 0).all() and rows["feasible"].all()


def test_an_impossible_deadline_is_recorded_not_raised(problem) -> None:  # type: ignore[no-untyped-def]
    rows = pd.DataFrame(plan_rows(problem, ["latency"], Constraints(deadline_ms=0.01), {"link": "4g"}))
    chosen = rows[rows["kind"] == "jointdnn"].iloc[0]
    assert not chosen["feasible"] and chosen["schedule"] == ""
    assert "deadline_ms" in chosen["error"]
    assert (rows["kind"] == "mobile_only").any()  # baselines are still there to compare with


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--links", "5g"], "unknown link profile '5g'"),
        (["--objectives", "speed"], "objectives must be among"),
        (["--server", "ftp://x"], "--server must be"),
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--shaping", "magic"], "--shaping must be"),
        (["--jpeg-quality", "0"], "--jpeg-quality must be between 1 and 95"),
        (["--image", "no-such-photo.jpg"], "--image no-such-photo.jpg is not a file"),
    ],
)
def test_run_rejects_bad_options_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "small_cnn", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_jpeg_variant_changes_only_cloud_first_schedules(problem) -> None:  # type: ignore[no-untyped-def]
    from harness.planner import evaluate
    from harness.planner.input_codec import JpegInput, jpeg_problem

    jpeg = JpegInput(jpeg_bytes=15_000, decode_ms=2.5)
    coded = jpeg_problem(problem, jpeg)
    raw_cloud, coded_cloud = evaluate(problem, [1, 1, 1]), evaluate(coded, [1, 1, 1])
    assert coded_cloud.up_bytes == 15_000 and raw_cloud.up_bytes == 150_528
    assert coded_cloud.cloud_ms == pytest.approx(raw_cloud.cloud_ms + 2.5)  # decode is server time
    for schedule in ([0, 1, 1], [0, 0, 0], [0, 1, 0]):  # start on the mobile: identical
        assert evaluate(coded, schedule) == evaluate(problem, schedule)

    rows = pd.DataFrame(plan_rows(problem, ["latency", "energy"], Constraints(), {"link": "4g"}, jpeg=jpeg))
    singles = rows[rows["kind"] == "single_cut"]
    assert sorted(singles["schedule"]) == ["CCC", "CCC+jpeg", "MCC", "MMC", "MMM"]
    for objective in ("latency", "energy"):
        mine = rows[rows["objective"] == objective].set_index("kind")
        status_quo = mine.loc["cloud_only_jpeg"]
        assert status_quo["schedule"] == "CCC+jpeg" and status_quo["input_codec"] == "jpeg"
        assert status_quo["pred_up_bytes"] == 15_000
        # the plan is the best over both codecs: never worse than the JPEG status quo or the raw plan
        best = min(
            plan(problem, Objective(objective)).objective_value,  # type: ignore[arg-type]
            plan(coded, Objective(objective)).objective_value,  # type: ignore[arg-type]
        )
        column = "pred_latency_ms" if objective == "latency" else "pred_mobile_energy_mj"
        assert mine.loc["jointdnn", column] == pytest.approx(best)
        assert mine.loc["jointdnn", column] <= status_quo[column]
