"""Schedules as stages, and boundary tensors handed between sides in the segments' own dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from harness.runner.execute import adapt_tensor, finish_output
from harness.runner.run import planning_link
from harness.runner.stages import Stage, schedule_label, split_stages, stages_from_label
from harness.specs import load_link
from models.bundle import QuantParams, TensorSpec
from models.errors import UsageError


def test_multi_hop_schedule_becomes_alternating_stages() -> None:
    locations = stages_from_label("MMCCMC")
    assert split_stages(locations) == [
        Stage("mobile", 0, 2),
        Stage("cloud", 2, 4),
        Stage("mobile", 4, 5),
        Stage("cloud", 5, 6),
    ]
    assert schedule_label(locations) == "MMCCMC"


def test_single_side_schedules_are_one_stage() -> None:
    assert split_stages(["cloud"] * 3) == [Stage("cloud", 0, 3)]
    assert split_stages(["mobile"]) == [Stage("mobile", 0, 1)]


def test_bad_schedules_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        split_stages([])
    with pytest.raises(UsageError, match="only M and C"):
        stages_from_label("MXC")


def test_float_input_is_quantized_for_an_int8_segment() -> None:
    spec = TensorSpec(shape=[1, 4], dtype="int8", quant=QuantParams(scale=1 / 255, zero_point=-128))
    x = np.array([[0.0, 0.2, 1.0, 2.0]], dtype=np.float32)
    q = adapt_tensor(x, None, spec)
    assert q.dtype == np.int8
    assert q.tolist() == [[-128, -77, 127, 127]]  # 0.2 * 255 = 51 steps; 2.0 saturates


def test_int8_boundary_is_requantized_when_parameters_differ() -> None:
    producer = TensorSpec(shape=[1, 2], dtype="int8", quant=QuantParams(scale=0.1, zero_point=0))
    consumer = TensorSpec(shape=[1, 2], dtype="int8", quant=QuantParams(scale=0.2, zero_point=10))
    y = np.array([[20, -40]], dtype=np.int8)  # real values 2.0 and -4.0
    moved = adapt_tensor(y, producer, consumer)
    assert moved.tolist() == [[20, -10]]  # 2.0/0.2+10, -4.0/0.2+10
    assert finish_output(moved, consumer).ravel().tolist() == pytest.approx([2.0, -4.0])


def test_same_parameters_pass_through_unchanged() -> None:
    spec = TensorSpec(shape=[1, 2], dtype="int8", quant=QuantParams(scale=0.1, zero_point=3))
    y = np.array([[5, -7]], dtype=np.int8)
    assert adapt_tensor(y, spec, spec) is y


def test_planner_sees_one_way_latency_per_transfer() -> None:
    link = load_link("3g")
    seen = planning_link(link, request_overhead_ms=4.0)
    assert seen.rtt_ms == pytest.approx((100.0 + 4.0) / 2)
    assert seen.up_mbps == link.up_mbps and seen.down_mbps == link.down_mbps
