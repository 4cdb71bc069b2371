"""The planner's weight-memory energy term (SmartDeal): weight bytes read x the device's pJ/byte."""

from __future__ import annotations

import pytest

from harness.planner.costmodel import evaluate
from harness.planner.costs import PlanningProblem, SegmentCosts
from harness.specs import LinkSpec, load_device

LINK = LinkSpec(
    name="x",
    up_mbps=8.0,
    down_mbps=8.0,
    rtt_ms=0.0,
    alpha_up_mw_per_mbps=0.0,
    alpha_down_mw_per_mbps=0.0,
    beta_mw=0.0,
)


def _problem(
    phase: str = "inference", weight_bytes: tuple[float, float] = (1_000_000.0, 3_000_000.0)
) -> PlanningProblem:
    segments = SegmentCosts(
        mobile_ms=[10.0, 20.0],
        mobile_mj=[5.0, 7.0],
        cloud_ms=[1.0, 2.0],
        out_bytes=[1000.0, 10.0],
        input_bytes=4000.0,
        mobile_backward_ms=[10.0, 20.0],
        mobile_backward_mj=[5.0, 7.0],
        cloud_backward_ms=[1.0, 2.0],
        weight_bytes=list(weight_bytes),
    )
    return PlanningProblem(segments=segments, link=LINK, phase=phase, dram_pj_per_byte=160.0)  # type: ignore[arg-type]


def test_memory_term_matches_a_hand_computed_two_segment_case() -> None:
    problem = _problem()
    # By hand: 1e6 B x 160 pJ/B = 0.16 mJ and 3e6 B x 160 pJ/B = 0.48 mJ; only mobile segments pay.
    both = evaluate(problem, ["mobile", "mobile"])
    assert both.mobile_memory_mj == pytest.approx(0.64)
    assert both.mobile_energy_mj == pytest.approx(5.0 + 7.0 + 0.64)
    assert evaluate(problem, ["mobile", "cloud"]).mobile_memory_mj == pytest.approx(0.16)
    assert evaluate(problem, ["cloud", "cloud"]).mobile_memory_mj == 0.0
    # Training reads every mobile segment's weights twice (forward, backward).
    assert evaluate(_problem("training"), ["mobile", "cloud"]).mobile_memory_mj == pytest.approx(0.32)


def test_compact_weights_lower_exactly_the_segments_they_compress() -> None:
    dense = evaluate(_problem(), ["mobile", "mobile"])
    compact = evaluate(_problem(weight_bytes=(1_000_000.0, 300_000.0)), ["mobile", "mobile"])
    assert dense.mobile_energy_mj - compact.mobile_energy_mj == pytest.approx(2_700_000 * 160e-9)
    assert compact.mobile_compute_mj == dense.mobile_compute_mj


def test_device_spec_carries_the_dram_price_and_its_source() -> None:
    device = load_device("generic-phone")
    assert device.dram_pj_per_byte == pytest.approx(640.0 / 4)  # Horowitz ISSCC 2014: 640 pJ per 32-bit read
    assert "Horowitz" in device.dram_source
    assert device.memory_energy_mj(1e6) == pytest.approx(0.16)


def test_plan_cli_with_a_smartdeal_artifact_prices_compact_weights(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    import numpy as np

    from harness.cli import main
    from models.smartdeal import LayerShape, from_matrix, reconstruct
    from models.smartdeal_artifact import ArtifactLayer, build_artifact, tflite_kernel_bytes
    from tests.harness.test_planner_cli import CLOUD_MS, MOBILE_MS, _write

    shape = LayerShape("dense", (64, 4), out=4, fan_in=64, basis=4, rows=16)  # G = 4 groups of (16, 4)
    rng = np.random.default_rng(0)
    c = (np.sign(rng.normal(size=(4, 16, 4))) * 2.0 ** rng.integers(-7, 1, (4, 16, 4))).astype(np.float32)
    basis = rng.normal(size=(4, 4, 4)).astype(np.float16).astype(np.float32)
    kernel = tflite_kernel_bytes(from_matrix(reconstruct(c, basis), shape), "dense")
    blob, report = build_artifact(
        [("segment_001.tflite", b"head" + kernel + b"tail", [ArtifactLayer("fc", shape, c, basis)])],
        exp_min=-7,
        code_bits=4,
    )
    saved = report.kernel_fp32_bytes - report.sd_payload_bytes
    assert saved == 1024 - (256 // 8 + 256 // 2 + 4 * 16 * 2)  # fp32 kernel - (mask + 4-bit codes + fp16 B)
    artifact = tmp_path / "m.sdw"
    artifact.write_bytes(blob)
    m, cl = _write(tmp_path / "mobile.csv", MOBILE_MS), _write(tmp_path / "cloud.csv", CLOUD_MS)
    out = tmp_path / "out"
    args = ["plan", "--mobile", str(m), "--cloud", str(cl), "--objective", "energy", "--out-dir", str(out)]
    assert main([*args, "--smartdeal", str(artifact)]) == 0
    assert "weight memory" in capsys.readouterr().out
    data = json.loads((out / "plan-toy-inference-4g-energy.json").read_text())
    mobile_only = data["baselines"]["mobile_only"]["predicted"]["mobile_memory_mj"]
    # Three segments of 1000 B each; segment 1 reads 1000 - saved bytes instead.
    assert mobile_only == pytest.approx((3000 - saved) * 160e-9)
    assert main([*args, "--smartdeal", str(tmp_path / "missing.sdw")]) == 2
