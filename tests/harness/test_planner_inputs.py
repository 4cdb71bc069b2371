"""Planner inputs from profile CSVs, and clear errors for bad input."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.planner import Constraints, Objective, SegmentCosts, build_problem, evaluate, plan
from harness.specs import load_device
from models.errors import InfeasibleError, ProfileError, UnknownLinkError, UsageError
from models.profile_rows import ProfileRow, append_rows

MOBILE_MS = [30.0, 80.0, 10.0, 5.0]
CLOUD_MS = [3.0, 8.0, 1.0, 0.5]
OUT_BYTES = [200_000, 20_000, 4_000, 40]


def _rows(side: str, latencies: list[float], **overrides: object) -> list[ProfileRow]:
    rows = []
    for i, ms in enumerate(latencies):
        row = ProfileRow(
            model="toy",
            quant="int8",
            segment=i,
            first_layer=f"conv{i}",
            last_layer=f"relu{i}",
            out_bytes=OUT_BYTES[i],
            latency_ms_median=ms,
            latency_ms_p10=ms,
            latency_ms_p90=ms,
            runs=5,
            energy_mj=math.nan,
            power_mw=math.nan,
            threads=1,
            device=side,
            runtime="litert",
            timestamp="2026-11-23T00:00:00Z",
            in_bytes=150_528 if i == 0 else OUT_BYTES[i - 1],
            backward_ms=2 * ms,
            backward_energy_mj=math.nan,
            param_bytes=1000 * (i + 1),
        )
        rows.append(replace(row, **overrides))  # type: ignore[arg-type]
    return rows


def write_profiles(
    tmp_path: Path, mobile: list[ProfileRow] | None = None, cloud: list[ProfileRow] | None = None
) -> tuple[Path, Path]:
    m, c = tmp_path / "mobile.csv", tmp_path / "cloud.csv"
    append_rows(m, mobile if mobile is not None else _rows("phone", MOBILE_MS))
    append_rows(c, cloud if cloud is not None else _rows("server", CLOUD_MS, energy_mj=99.0))
    return m, c


def test_build_problem_from_csvs_derives_missing_mobile_energy(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path)
    problem = build_problem(m, c, "4G", "generic-phone")
    device = load_device("generic-phone")
    assert problem.n == 4 and problem.model == "toy" and problem.link.name == "4g"
    # NaN energy_mj -> active_mw (1500 mW) x latency, of which the weight reads are the memory term.
    memory_mj = problem.segments.weight_bytes * device.dram_pj_per_byte * 1e-9
    np.testing.assert_allclose(
        problem.segments.mobile_mj + memory_mj, [device.compute_energy_mj(ms) for ms in MOBILE_MS]
    )
    assert problem.segments.mobile_mj[0] + memory_mj[0] == pytest.approx(45.0)
    assert problem.segments.input_bytes == 150_528
    assert problem.waiting_mw == device.waiting_mw
    # The cloud's own energy (99 mJ) never counts: mobile-only and cloud-only energies ignore it.
    cloud_only = evaluate(problem, ["cloud"] * 4)
    assert cloud_only.mobile_compute_mj == 0.0
    assert problem.segments.names[1] == "conv1..relu1"


def test_measured_mobile_energy_is_used_as_is(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path, mobile=_rows("phone", MOBILE_MS, energy_mj=7.0))
    problem = build_problem(m, c, "wifi")
    assert evaluate(problem, [0, 0, 0, 0]).mobile_energy_mj == pytest.approx(28.0)


def test_training_problem_uses_backward_costs_and_weight_sync(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path)
    problem = build_problem(m, c, "4g", phase="training", sync_every_steps=10)
    mobile_only = evaluate(problem, [0, 0, 0, 0])
    assert mobile_only.latency_ms == pytest.approx(3 * sum(MOBILE_MS))  # forward + backward (2x)
    last_on_cloud = evaluate(problem, [0, 0, 0, 1])
    # Activation up + gradient down at boundary 3 (two round trips), sync 4000 B / 10 per step down.
    assert last_on_cloud.transfers == 2
    assert last_on_cloud.up_bytes == 4_000 and last_on_cloud.down_bytes == pytest.approx(4_000 + 400)
    assert plan(problem, Objective("energy")).phase == "training"


@pytest.mark.parametrize(
    ("mobile_over", "match"),
    [
        ({"latency_ms_median": -1.0}, "negative"),
        ({"latency_ms_median": math.nan}, "missing"),
    ],
)
def test_bad_costs_are_rejected(tmp_path: Path, mobile_over: dict[str, float], match: str) -> None:
    m, c = write_profiles(tmp_path, mobile=_rows("phone", MOBILE_MS, **mobile_over))
    with pytest.raises(ProfileError, match=match):
        build_problem(m, c, "4g")


def test_mismatched_profiles_are_rejected(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path / "a", cloud=_rows("server", CLOUD_MS[:3]))
    with pytest.raises(ProfileError, match="different segments"):
        build_problem(m, c, "4g")
    m, c = write_profiles(tmp_path / "b", cloud=_rows("server", CLOUD_MS, first_layer="dense"))
    with pytest.raises(ProfileError, match="first_layer"):
        build_problem(m, c, "4g")
    m, c = write_profiles(tmp_path / "c", cloud=_rows("server", CLOUD_MS, out_bytes=7))
    with pytest.raises(ProfileError, match="out_bytes"):
        build_problem(m, c, "4g")


def test_missing_input_size_and_backward_costs(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path, mobile=_rows("phone", MOBILE_MS, in_bytes=0))
    with pytest.raises(ProfileError, match="in_bytes"):
        build_problem(m, c, "4g")
    assert build_problem(m, c, "4g", input_bytes=3072).segments.input_bytes == 3072
    m, c = write_profiles(tmp_path / "t", cloud=_rows("server", CLOUD_MS, backward_ms=math.nan))
    with pytest.raises(ProfileError, match="backward_ms"):
        build_problem(m, c, "4g", phase="training")


def test_unknown_link_missing_file_and_contradictions(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path)
    with pytest.raises(UnknownLinkError, match="5g"):
        build_problem(m, c, "5g")
    with pytest.raises(ProfileError, match="does not exist"):
        build_problem(tmp_path / "nope.csv", c, "4g")
    with pytest.raises(ProfileError, match=r"is a directory.*\.csv"):
        build_problem(tmp_path, c, "4g")
    with pytest.raises(UsageError, match="phase=training"):
        build_problem(m, c, "4g", sync_every_steps=5)
    with pytest.raises(UsageError, match="phase"):
        build_problem(m, c, "4g", phase="serving")  # type: ignore[arg-type]


def test_objective_constraint_and_schedule_validation() -> None:
    with pytest.raises(UsageError):
        Objective("throughput")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Objective("weighted", 0.0, 0.0)
    with pytest.raises(UsageError, match="deadline_ms"):
        Constraints(deadline_ms=-5)
    with pytest.raises(ProfileError, match="one per segment"):
        SegmentCosts(mobile_ms=[1, 2], mobile_mj=[1], cloud_ms=[1, 2], out_bytes=[1, 1], input_bytes=1)
    with pytest.raises(ProfileError, match="at least one segment"):
        SegmentCosts(mobile_ms=[], mobile_mj=[], cloud_ms=[], out_bytes=[], input_bytes=1)


def test_evaluate_rejects_malformed_schedules(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path)
    problem = build_problem(m, c, "4g")
    with pytest.raises(UsageError):
        evaluate(problem, [0, 1])
    with pytest.raises(UsageError):
        evaluate(problem, ["mobile", "edge", "cloud", "mobile"])
    with pytest.raises(UsageError):
        evaluate(problem, [0, 2, 0, 0])
    assert evaluate(problem, ["mobile", "cloud", "cloud", "mobile"]) == evaluate(problem, [0, 1, 1, 0])


def test_infeasible_error_carries_constraint_and_best_value(tmp_path: Path) -> None:
    m, c = write_profiles(tmp_path)
    problem = build_problem(m, c, "3g")
    with pytest.raises(InfeasibleError) as info:
        plan(problem, Objective("latency"), Constraints(energy_budget_mj=1.0))
    best = min(evaluate(problem, s).mobile_energy_mj for s in ([0] * 4, [1] * 4, [0, 1, 1, 1]))
    assert info.value.constraint == "energy_budget_mj"
    assert info.value.best_achievable is not None and info.value.best_achievable <= best
    assert "energy_budget_mj" in str(info.value) and "mJ" in str(info.value)
