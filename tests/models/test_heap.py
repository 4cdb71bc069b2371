"""Activation-sized hand-overs stay on the heap once a chain process has set glibc's thresholds."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from models.bundle import QuantParams
from models.heap import keep_buffers_on_heap
from models.runtime import requantize

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")


def test_requantizing_a_large_activation_does_not_fault_its_pages_in_every_time() -> None:
    if not keep_buffers_on_heap():
        pytest.skip("the C library has no mallopt (not glibc)")
    # MobileNetV2's second activation (392 KiB int8; its float32 temporaries 1.5 MiB, 392 pages each)
    q = np.random.default_rng(0).integers(-128, 127, (1, 112, 112, 32), dtype=np.int8)
    src, dst = QuantParams(scale=0.02, zero_point=3), QuantParams(scale=0.03, zero_point=-5)
    for _ in range(2):  # the first hand-overs grow the heap
        requantize(q, src, dst)
    times = 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        requantize(q, src, dst)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < times * 20  # measured under glibc's defaults: ~67 per hand-over; with the settings ~5


def test_setting_the_thresholds_twice_is_harmless() -> None:
    assert keep_buffers_on_heap() == keep_buffers_on_heap()
