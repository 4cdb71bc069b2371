"""The adaptive run end to end on the small CNN (local device), and its clean-up when terminated."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.adaptive.compare import compare_policies
from harness.adaptive.loop import AdaptiveRunConfig, LoadPhase, run_adaptive
from harness.links import netns
from harness.reports.schema import DECISION_COLUMNS
from harness.runner.run import RunConfig

TRACE = "t_s,up_mbps,down_mbps,rtt_ms\n0,8,16,30\n2,1,2,120\n4,8,16,30\n"


@pytest.fixture(scope="module")
def small_bundle(bundle_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return Path(bundle_factory("small_cnn", "int8"))


def test_adaptive_run_writes_decisions_and_timeline(small_bundle: Path, tmp_path: Path) -> None:
    trace = tmp_path / "drop.csv"
    trace.write_text(TRACE)
    n = len(pd.read_json(small_bundle / "manifest.json", typ="series")["segments"])
    run = RunConfig(
        model=str(small_bundle),
        device="local",
        links=["4g"],
        shaping="pacing",
        out_dir=tmp_path / "reports",
        profile_runs=3,
        cloud_profile_runs=3,
    )
    config = AdaptiveRunConfig(
        run=run,
        trace=str(trace),
        policies=["adaptive", f"static:{'M' * n}", f"static:{'C' * n}"],
        load=[LoadPhase(0.0, 6.0, 6)],  # six clients: requests overlap, so some wait where /v1/load sees them
        battery_start_pct=25.0,  # crosses the 20 % threshold about midway (~9 % drained in 6 s)
        battery_capacity_mj=2_000.0,
        duration_s=6.0,
    )
    result = run_adaptive(config)
    d = pd.read_csv(result.run_dir / "decisions.csv")
    assert list(d.columns) == DECISION_COLUMNS
    assert set(d["policy"]) == {"adaptive", f"static:{'M' * n}", f"static:{'C' * n}"}
    assert d["output_matches"].all()
    adaptive = d[d["policy"] == "adaptive"]
    assert adaptive["cache_hit"].iloc[1:].any() and (adaptive["decision_us"] > 0).all()
    assert adaptive["battery_pct"].is_monotonic_decreasing and adaptive["battery_pct"].iloc[-1] < 20.0
    # crossing the 20 % threshold switched the controller to the energy objective
    assert set(adaptive["mode"]) == {"normal", "battery-low"}
    assert set(adaptive.loc[adaptive["mode"] == "battery-low", "objective"]) == {"energy"}
    # the trace's drop is what the run saw
    assert set(d["true_up_mbps"].round(3)) == {8.0, 1.0}
    cloud = d[d["policy"] == f"static:{'C' * n}"]
    assert cloud["up_bytes"].gt(0).all()
    assert d["server_backlog"].max() >= 1  # the load generator occupied the server
    assert (result.run_dir / "timeline-adaptive.png").stat().st_size > 10_000
    comparison = compare_policies(d, "latency_ms", interval_s=1.0)
    assert comparison.oracle <= min(
        comparison.figures[p] for p in comparison.figures if p.startswith("static")
    )


def _processes_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -ww -eo" not in line]


def _children(pid: int) -> dict[int, str]:
    """Direct children of ``pid``: their command lines by pid."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    return {int(row[0]): row[2] if len(row) > 2 else "" for row in rows if int(row[1]) == pid}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_terminated_trace_run_leaves_nothing_behind(small_bundle: Path, tmp_path: Path) -> None:
    """SIGTERM mid-trace (load generator running): no namespace, qdisc, load generator or server remains."""
    marker = f"cleanup{secrets.token_hex(4)}"
    bundle = tmp_path / marker  # the served model's name: it appears in the server's and loadgen's argv
    shutil.copytree(small_bundle, bundle)
    argv = [sys.executable, "-m", "harness.cli", "run", str(bundle), "--device", "local", "--adaptive"]
    argv += [
        "--trace",
        "lte-walk-deep-fade",
        "--links",
        "4g",
        "--load-phase",
        "0:60:2",
        "--profile-runs",
        "2",
    ]
    argv += ["--out", str(tmp_path / "reports")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any("harness.adaptive.loadgen" in p for p in _processes_with(marker)):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the load generator never started"
            time.sleep(0.5)
        children = _children(process.pid)  # server, load generator, probe, relay (tc mode)
        assert any("uvicorn" in args for args in children.values())
        assert any("harness.adaptive.loadgen" in args for args in children.values())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) != 0
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.5)
    assert _processes_with(marker) == []  # the server and the load generator are stopped
    assert [
        args for pid, args in children.items() if _alive(pid)
    ] == []  # and every other process the run started
    if netns.has_net_admin():
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"jdnn-{process.pid}-" not in namespaces  # with them their veth and qdiscs
