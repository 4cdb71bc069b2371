"""The exported GHA update step: builtin TFLite ops only, and the same update as the host trainer."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import UsageError
from models.runtime import SegmentRunner, interpreter_class
from models.stream_update import export_update_step, pack_update_input, step_input, update_rates
from models.streaming_pca import FixedPointStreamingPCA, StreamConfig, StreamingPCA, feature_batches

K, CHANNELS, BATCH = 4, 12, 32


@pytest.fixture(scope="module")
def step_bundle(tmp_path_factory):
    return export_update_step(K, CHANNELS, BATCH, tmp_path_factory.mktemp("stream-step"))


def test_stream_update_step_uses_builtin_ops_only(step_bundle):
    interpreter = interpreter_class()(model_path=str(step_bundle / "segment_000.tflite"))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"}
    assert ops <= {"ADD", "BATCH_MATMUL", "CONCATENATION", "MEAN", "MUL", "STRIDED_SLICE", "SUB", "TRANSPOSE"}
    runner = SegmentRunner(step_bundle / "segment_000.tflite")
    assert runner.input_shape == (1, 1 + K + BATCH, CHANNELS + 1)
    assert runner.output_shape == (1, 1 + K, CHANNELS)


def test_stream_update_step_matches_the_host_trainer(step_bundle):
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((BATCH * 40, CHANNELS)) * np.linspace(3, 0.2, CHANNELS) + 1.0
    runner = SegmentRunner(step_bundle / "segment_000.tflite")
    trainer = StreamingPCA(CHANNELS, StreamConfig(k=K, batch_size=BATCH, check_every=8))
    state = trainer.state
    for batch in feature_batches(vectors, BATCH):  # 40 updates: past the per-row-rate warm-up
        mean_rate, row_rates = update_rates(trainer, batch)
        state = runner.run(pack_update_input(state, batch, mean_rate, row_rates))[0]
        trainer.update(batch)
    assert trainer.row_lr_shifts().min() < trainer.current_lr_shift()  # per-row rates were exercised
    assert np.max(np.abs(state - trainer.state)) < 1e-4


def test_stream_fixed_point_step_is_bit_exact_with_integer_ops_only(tmp_path):
    bundle = export_update_step(K, CHANNELS, BATCH, tmp_path / "int-step", fixed_point=True)
    interpreter = interpreter_class()(model_path=str(bundle / "segment_000.tflite"))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"}
    assert "RIGHT_SHIFT" in ops and not ops & {"BATCH_MATMUL", "FULLY_CONNECTED", "DEQUANTIZE", "CAST"}
    runner = SegmentRunner(bundle / "segment_000.tflite")
    assert runner.input_dtype == np.int32 and runner.output_dtype == np.int32
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((BATCH * 40, CHANNELS)) * np.linspace(3, 0.2, CHANNELS) + 1.0
    trainer = FixedPointStreamingPCA(CHANNELS, StreamConfig(k=K, batch_size=BATCH, check_every=8))
    state = trainer.state
    for batch in feature_batches(vectors, BATCH):
        state = runner.run(step_input(trainer, state, batch))[0]
        trainer.update(batch)
    assert np.array_equal(state, trainer.state)  # bit for bit, per-row rates included


def test_stream_update_step_refuses_bad_sizes(tmp_path):
    with pytest.raises(UsageError, match="k <= 3"):
        export_update_step(4, 3, 8, tmp_path)
    with pytest.raises(UsageError, match="power-of-two"):
        export_update_step(2, 3, 12, tmp_path, fixed_point=True)
