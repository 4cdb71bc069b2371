"""The LiteRT chain runner: ranges, timings, dtype checks, and no TensorFlow at import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models.bundle import QuantParams
from models.errors import BackendError
from models.runtime import SegmentChain, backend_name, dequantize, quantize, requantize


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


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_requantize_by_table_equals_the_float_path(dtype: type) -> None:
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    q = np.arange(info.min, info.max + 1).astype(dtype)[rng.permutation(256)].reshape(1, 4, 4, 16)
    for _ in range(20):
        src = QuantParams(
            scale=float(rng.uniform(1e-3, 1.0)), zero_point=int(rng.integers(info.min, info.max))
        )
        dst = QuantParams(
            scale=float(rng.uniform(1e-3, 1.0)), zero_point=int(rng.integers(info.min, info.max))
        )
        by_table = requantize(q, src, dst)
        assert by_table.dtype == q.dtype and by_table.shape == q.shape
        np.testing.assert_array_equal(by_table, quantize(dequantize(q, src), dst, q.dtype))
