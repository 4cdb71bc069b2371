"""End to end: small CNN, the emulated device through the real adb server, real uvicorn, shaped links.

One run (session-scoped, ~1 minute) feeds every assertion: final outputs equal the whole model's,
the report files exist with the expected columns and plausible values, every schedule in the plans
was executed, the planner's schedule is the one it computes from the run's own profiles, and nothing
is left behind (namespaces, processes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.emulator import EmulatedDevice
from harness.links import netns
from harness.planner import Constraints, Objective, plan
from harness.planner.input_codec import JpegInput, jpeg_problem
from harness.reports.schema import LINKS_COLUMNS, MEASUREMENT_COLUMNS, PLAN_COLUMNS, SUMMARY_COLUMNS
from harness.runner.planning import best_plan
from harness.runner.run import Calibration, RunConfig, RunResult, planning_problem, run_experiment
from harness.specs import load_device, load_link

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


def test_schedule_matches_the_plan(run: RunResult) -> None:
    links = pd.read_csv(run.run_dir / "links.csv").set_index("link")
    profiles = run.run_dir / "profiles"
    for link in LINKS:
        factors = [float(links.loc[link, c]) for c in ("mobile_scale", "mobile_energy_scale", "cloud_scale")]
        calibration = Calibration(*factors, request_overhead_ms=float(links.loc[link, "request_overhead_ms"]))
        problem = planning_problem(
            profiles / "mobile.csv",
            profiles / "cloud.csv",
            load_link(link),
            load_device("generic-phone"),
            calibration,
        )
        jpeg = JpegInput(float(links.loc[link, "jpeg_bytes"]), float(links.loc[link, "jpeg_decode_ms"]))
        for objective in ("latency", "energy"):
            row = run.plans[(run.plans["link"] == link) & (run.plans["objective"] == objective)
                            & (run.plans["kind"] == "jointdnn")]  # fmt: skip
            chosen, uses_jpeg = best_plan(
                problem, jpeg_problem(problem, jpeg), Objective(objective), Constraints()
            )  # type: ignore[arg-type]
            assert row["schedule"].iloc[0] == chosen.label + ("+jpeg" if uses_jpeg else "")
            raw = plan(problem, Objective(objective)).label  # type: ignore[arg-type]
            assert uses_jpeg or row["schedule"].iloc[0] == raw


def test_links_were_shaped_as_the_process_allows(run: RunResult) -> None:
    links = pd.read_csv(run.run_dir / "links.csv").set_index("link")
    for column in ("mobile_scale", "mobile_energy_scale", "cloud_scale"):
        assert (links[column] > 0).all() and links[column].notna().all()
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
