"""End to end: small CNN, the emulated device through the real adb server, real uvicorn, shaped links.

One run (session-scoped, ~1 minute) feeds every assertion: final outputs equal the whole model's,
the report files exist with the expected columns and plausible values, every schedule in the plans
was executed, every prediction is what the profiles and the link measurement give with the run's own
executions withheld (no rescaling; only its diagnostic), the profiles say how their overheads were
measured, and nothing is left behind (namespaces, processes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.emulator import EmulatedDevice
from harness.links import netns
from harness.planner import Constraints
from harness.planner.input_codec import JpegInput
from harness.reports.schema import LINKS_COLUMNS, MEASUREMENT_COLUMNS, PLAN_COLUMNS, SUMMARY_COLUMNS
from harness.runner.run import Calibration, RunConfig, RunResult, plan_rows, planning_problem, run_experiment
from harness.specs import load_device, load_link
from models.profile_rows import read_profile

LINKS = ["wifi", "3g"]


@pytest.fixture(scope="module")
def run(
    bundle_factory: Callable[..., Path],
    emulated_device: EmulatedDevice,
    tmp_path_factory: pytest.TempPathFactory,
) -> RunResult:
    root = tmp_path_factory.mktemp("e2e")
    config = RunConfig(
        model=str(bundle_factory("small_cnn", "int8")),
        device=emulated_device.serial,
        links=LINKS,
        repeats=1,
        out_dir=root / "reports",
        profiles_root=root,
        profile_runs=5,
    )
    return run_experiment(config)


def test_every_output_equals_the_whole_models(run: RunResult) -> None:
    m = run.measurements
    assert len(m) > 0
    assert set(m["input_codec"]) == {"raw", "jpeg"}  # JPEG executions are checked on the decoded JPEG
    assert m["output_matches"].all(), m.loc[~m["output_matches"], ["schedule", "output_max_abs_err"]]
    assert m["argmax_matches"].all()
    assert (m["output_max_abs_err"] <= m["output_tolerance"]).all()


def test_report_files_exist_with_expected_columns(run: RunResult) -> None:
    d = run.run_dir
    for name, columns in (
        ("plans.csv", PLAN_COLUMNS),
        ("measurements.csv", MEASUREMENT_COLUMNS),
        ("summary.csv", SUMMARY_COLUMNS),
        ("links.csv", LINKS_COLUMNS),
    ):
        assert list(pd.read_csv(d / name).columns) == columns, name
    for name in ("layerwise.png", "latency_vs_split.png", "energy_vs_split.png", "predicted_vs_measured.png",
                 "breakdown.png", "index.md", "run.json", "profiles/mobile.csv", "profiles/cloud.csv",
                 "profiles/link-3g.yaml", "profiles/device-generic-phone.yaml"):  # fmt: skip
        assert (d / name).is_file(), name
    index = (d / "index.md").read_text()
    assert "latency_vs_split.png" in index and "| wifi | latency |" in index


def test_values_are_plausible(run: RunResult) -> None:
    m = run.measurements
    timing = ["latency_ms", "device_compute_ms", "upload_ms", "server_ms", "download_ms", "mobile_energy_mj"]
    assert not m[timing].isna().any().any()
    assert (m["latency_ms"] > 0).all() and (m["mobile_energy_mj"] > 0).all()
    offloaded = m[m["requests"] > 0]
    assert (offloaded["upload_ms"] > 0).all() and (offloaded["download_ms"] > 0).all()
    assert (offloaded["server_ms"] > 0).all()
    parts = m[["device_compute_ms", "upload_ms", "queue_ms", "server_ms", "download_ms"]].sum(axis=1)
    assert np.allclose(parts, m["latency_ms"])
    summary = pd.read_csv(run.run_dir / "summary.csv")
    assert set(summary["link"]) == set(LINKS) and set(summary["objective"]) == {"latency", "energy"}
    numeric = ["pred_latency_ms", "meas_latency_ms", "meas_energy_mj", "speedup_vs_cloud_only", "regret"]
    assert not summary[numeric].isna().any().any()
    assert (summary["regret"] > 0).all()  # < 1 only if a multi-hop plan beats every single cut
    # 3G is slower than Wi-Fi for the same offloading schedule
    cloud = m[m["schedule"] == m["schedule"].str.replace("M", "C")].groupby("link")["latency_ms"].median()
    assert cloud["3g"] > cloud["wifi"]


def test_every_planned_schedule_was_executed(run: RunResult) -> None:
    planned = set(zip(run.plans["link"], run.plans["schedule"], strict=True))
    executed = set(zip(run.measurements["link"], run.measurements["schedule"], strict=True))
    assert planned == executed
    n = json.loads((run.run_dir / "run.json").read_text())["num_segments"]
    singles = run.plans[run.plans["kind"] == "single_cut"]
    assert len(singles) == len(LINKS) * (n + 2)  # every cut, and cut 0 (cloud-only) also with the JPEG


def _planning_inputs_only(run: RunResult, link: str) -> pd.DataFrame:
    """plans.csv rows of ``link`` recomputed from the profiles and the link measurement alone."""
    links = pd.read_csv(run.run_dir / "links.csv").set_index("link")
    profiles = run.run_dir / "profiles"
    measured = ("request_overhead_ms", "up_burst_bytes", "down_burst_bytes", "rtt_ms")  # measured on the link
    calibration = Calibration(**{c: float(links.loc[link, c]) for c in measured})
    problem = planning_problem(
        profiles / "mobile.csv",
        profiles / "cloud.csv",
        load_link(link),
        load_device("generic-phone"),
        calibration,
    )
    key = run.plans[run.plans["link"] == link].iloc[0]
    base = {c: str(key[c]) for c in ("run_id", "model", "quant", "device", "link")}
    jpeg = JpegInput(float(links.loc[link, "jpeg_bytes"]), float(links.loc[link, "jpeg_decode_ms"]))
    rows = plan_rows(problem, ["latency", "energy"], Constraints(), base, jpeg=jpeg)
    return pd.DataFrame([asdict(r) for r in rows])


def test_predictions_are_unchanged_when_the_runs_executions_are_withheld(run: RunResult) -> None:
    """Every prediction of plans.csv, recomputed with no execution of the run at hand: identical."""
    predicted = [c for c in PLAN_COLUMNS if c.startswith("pred_")] + ["schedule", "kind", "objective"]
    for link in LINKS:
        mine = run.plans[run.plans["link"] == link][predicted].reset_index(drop=True)
        again = _planning_inputs_only(run, link)[predicted]
        pd.testing.assert_frame_equal(mine, again, check_dtype=False)
        for objective in ("latency", "energy"):
            chosen = mine[(mine["objective"] == objective) & (mine["kind"] == "jointdnn")]
            assert chosen["schedule"].iloc[0] == again.loc[chosen.index[0], "schedule"]


def test_no_rescaling_only_its_diagnostic(run: RunResult) -> None:
    links = pd.read_csv(run.run_dir / "links.csv").set_index("link")
    for column in ("mobile_scale", "mobile_energy_scale", "cloud_scale"):
        assert (links[column] == 1.0).all()  # not applied
    for column in ("needed_mobile_scale", "needed_mobile_energy_scale", "needed_cloud_scale"):
        assert (links[column] > 0).all()  # measured after the runs, reported
    assert "no rescaling" in json.loads((run.run_dir / "run.json").read_text())["planning_note"]


def test_the_profiles_record_how_each_overhead_was_measured(run: RunResult) -> None:
    for side, how in (("mobile", "device run_chain"), ("cloud", "server /profile")):
        rows = read_profile(run.run_dir / "profiles" / f"{side}.csv")
        segments = rows[rows["segment"] >= 0]
        assert segments["overhead_method"].str.startswith(how).all(), side
        assert (segments["overhead_ms"] >= 0).all() and (segments["chain_ms_median"] > 0).all()
    cloud = read_profile(run.run_dir / "profiles" / "cloud.csv")
    assert (cloud[cloud["segment"] >= 0]["overhead_ms"] > 0).all()  # a request costs more than its segments


def test_links_were_shaped_as_the_process_allows(run: RunResult) -> None:
    links = pd.read_csv(run.run_dir / "links.csv").set_index("link")
    assert (links["request_overhead_ms"] >= 0).all()
    expected = {"tc-netem", "tc-tbf+relay"} if netns.has_net_admin() else {"pacing"}
    assert set(links["shaping"]) <= expected
    for name in LINKS:
        target = load_link(name)
        assert links.loc[name, "up_mbps"] == pytest.approx(target.up_mbps, rel=0.25)
        assert links.loc[name, "down_mbps"] == pytest.approx(target.down_mbps, rel=0.25)


def _children() -> list[str]:
    """Command lines of this process's live child processes."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = next(line for line in status.read_text().splitlines() if line.startswith("PPid:"))
            if int(ppid.split()[1]) == os.getpid():
                found.append((status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, StopIteration, ValueError):
            continue
    return found


def test_nothing_is_left_running(run: RunResult) -> None:
    assert run.run_dir.is_dir()
    if netns.NETNS_DIR.is_dir():
        mine = [p.name for p in netns.NETNS_DIR.iterdir() if p.name.startswith(f"jdnn-{os.getpid()}-")]
        assert mine == []
    leftovers = [c for c in _children() if "uvicorn" in c or "harness.links" in c]
    assert leftovers == []
