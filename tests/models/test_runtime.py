"""The LiteRT chain runner: ranges, timings, dtype checks, and no TensorFlow at import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models.bundle import QuantParams
from models.errors import BackendError
from models.runtime import SegmentChain, backend_name, quantize, requantize


def test_runtime_imports_without_tensorflow() -> None:
    code = "import sys, models.runtime, models.bundle; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


def test_chain_runs_any_range_and_times_each_segment(bundle_factory) -> None:
    chain = SegmentChain(bundle_factory("small_cnn", "fp32"))
    assert backend_name() == "litert"
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    full = chain.run(x)
    assert len(full.segment_ms) == len(chain) and all(ms > 0 for ms in full.segment_ms)
    mid = chain.run(x, 0, 4)
    assert mid.output.shape == (1, 8, 8, 32) and len(mid.segment_ms) == 4
    np.testing.assert_array_equal(chain.run(mid.output, 4).output, full.output)


def test_chain_rejects_bad_ranges_and_inputs(bundle_factory) -> None:
    chain = SegmentChain(bundle_factory("small_cnn", "int8"))
    x = np.zeros((1, 32, 32, 3), dtype=np.float32)
    with pytest.raises(BackendError, match="outside"):
        chain.run(chain.prepare_input(x), 3, 2)
    with pytest.raises(BackendError, match="does not match"):
        chain.run(x)  # float input to an int8 segment
    assert chain.prepare_input(x).dtype == np.int8


def test_quantize_round_trips_and_requantize_is_identity_on_same_params() -> None:
    params = QuantParams(scale=0.1, zero_point=-3)
    q = quantize(np.array([0.0, 1.0, -1.0, 100.0], dtype=np.float32), params)
    assert q.tolist() == [-3, 7, -13, 127]
    assert requantize(q, params, params) is q
    other = QuantParams(scale=0.2, zero_point=0)
    assert requantize(q, params, other).tolist() == [0, 5, -5, 65]
