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
