"""Butterfly unit: shapes, weight reuse, cut points, and the 8-bit quantization round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.butterfly import (
    ACTIVATION_RANGES,
    REDUCE_LAYER,
    RESTORE_LAYER,
    ButterflyConfig,
    butterfly_cut_bytes,
    cut_activation,
    decode_features,
    dequantize_features,
    encode_features,
    insert_butterfly,
    quantize_features,
)
from models.errors import InvalidCutError, UsageError


@pytest.fixture(scope="module")
def small_cnn():
    from models.zoo import build_model

    return build_model("small_cnn", seed=0)


@pytest.fixture(scope="module")
def small_resnet():
    from models.small_resnet import build_small_resnet

    return build_small_resnet(seed=0)


@pytest.mark.parametrize(
    ("cut", "channels", "stride", "sent", "restored"),
    [
        ("block2_pool", 4, 1, (8, 8, 4), (8, 8, 32)),
        ("block2_pool", 8, 2, (4, 4, 8), (8, 8, 32)),
        ("block1_relu", 2, 1, (32, 32, 2), (32, 32, 16)),
    ],
)
def test_butterfly_shapes_and_cut_point(small_cnn, cut, channels, stride, sent, restored):
    from models.graph import analyze

    model = insert_butterfly(small_cnn, cut, ButterflyConfig(channels=channels, stride=stride))
    assert tuple(model.get_layer(REDUCE_LAYER).output.shape[1:]) == sent
    assert tuple(model.get_layer(RESTORE_LAYER).output.shape[1:]) == restored
    assert tuple(model.outputs[0].shape[1:]) == (10,)
    assert butterfly_cut_bytes(model) == int(np.prod(sent))
    graph = analyze(model)
    assert REDUCE_LAYER in graph.cut_layers  # the new, cheap cut point
    segment = next(s for s in graph.segments if s.last_layer == REDUCE_LAYER)
    assert segment.out_bytes == 4 * int(np.prod(sent))  # float32 in Keras; 1 byte/value on the wire
    y = model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    assert y.shape == (2, 10) and np.isfinite(y).all()


def test_butterfly_copies_base_weights_without_sharing(small_cnn):
    model = insert_butterfly(small_cnn, "block2_pool", 4)
    for name in ("block1_conv", "block3_bn", "logits"):
        for a, b in zip(
            small_cnn.get_layer(name).get_weights(), model.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    assert model.get_layer("block1_conv") is not small_cnn.get_layer("block1_conv")
    before = small_cnn.get_layer("logits").get_weights()[0].copy()
    kernel = model.get_layer("logits").kernel
    kernel.assign(kernel.numpy() + 1.0)
    np.testing.assert_array_equal(small_cnn.get_layer("logits").get_weights()[0], before)


def test_restoration_uses_the_base_activation(small_cnn, small_resnet):
    assert cut_activation(small_cnn, "block2_pool")["class"] == "ReLU"  # pool walks back to block2_relu
    model = insert_butterfly(small_resnet, "stage2_out", 8)
    assert type(model.get_layer(RESTORE_LAYER)).__name__ == "ReLU"
    assert tuple(model.get_layer(REDUCE_LAYER).output.shape[1:]) == (16, 16, 8)
    assert type(model.get_layer("butterfly_reduce_act")).__name__ == "ReLU"  # ReLU6, fused by TFLite


def test_invalid_cuts_are_rejected(small_cnn, small_resnet):
    with pytest.raises(InvalidCutError, match="not a cut point"):
        insert_butterfly(small_cnn, "block2_bn", 4)  # would split BN from its ReLU
    with pytest.raises(InvalidCutError, match="not a cut point"):
        insert_butterfly(small_resnet, "stage2_relu1", 4)  # inside a residual block
    with pytest.raises(InvalidCutError, match="4-D"):
        insert_butterfly(small_cnn, "fc1_relu", 4)
    with pytest.raises(InvalidCutError, match="no layer"):
        insert_butterfly(small_cnn, "nope", 4)
    with pytest.raises(UsageError, match="already has a butterfly"):
        insert_butterfly(insert_butterfly(small_cnn, "block2_pool", 4), "block1_pool", 4)
    with pytest.raises(UsageError, match="stride"):
        ButterflyConfig(channels=4, stride=3)
    with pytest.raises(UsageError, match="channels"):
        ButterflyConfig(channels=0)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(ACTIVATION_RANGES)),
    st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=64),
)
def test_quantization_round_trip_is_within_half_a_step(activation, values):
    low, high = ACTIVATION_RANGES[activation]
    x = np.asarray(values, np.float32)
    codes = quantize_features(x, low, high)
    assert codes.dtype == np.uint8
    back = dequantize_features(codes, low, high)
    step = (high - low) / 255
    inside = (x >= low) & (x <= high)
    assert np.all(np.abs(back[inside] - x[inside]) <= step / 2 + 1e-6)
    np.testing.assert_allclose(back[~inside], np.clip(x[~inside], low, high), atol=1e-6)  # clamped
    np.testing.assert_array_equal(quantize_features(back, low, high), codes)  # idempotent on the grid


def test_entropy_coding_is_lossless_and_smaller_on_sparse_features():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((8, 8, 16)), 0).astype(np.float32)  # ReLU-like: half zeros
    raw = encode_features(x, 0.0, 6.0)
    packed = encode_features(x, 0.0, 6.0, codec="zstd")
    assert raw.nbytes == x.size  # one byte per value
    assert packed.nbytes < raw.nbytes
    np.testing.assert_array_equal(decode_features(packed), decode_features(raw))
    assert np.max(np.abs(decode_features(raw) - np.clip(x, 0, 6))) <= 6.0 / 255 / 2 + 1e-6
    with pytest.raises(UsageError, match="codec"):
        encode_features(x, 0.0, 6.0, codec="gzip")  # type: ignore[arg-type]


def test_quantizer_layer_matches_numpy_and_passes_gradients_straight_through():
    import tensorflow as tf

    from models.feature_quantizer import FeatureQuantizer

    layer = FeatureQuantizer(0.0, 6.0)
    x = tf.constant(np.random.default_rng(0).uniform(-1.0, 7.0, 400).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    np.testing.assert_allclose(
        y.numpy(), dequantize_features(quantize_features(x.numpy(), 0, 6), 0, 6), atol=1e-5
    )
    assert np.unique(np.round(y.numpy() / (6.0 / 255), 3)).size <= 256  # on the 8-bit grid
    grad = tape.gradient(y, x).numpy()
    inside = (x.numpy() > 0) & (x.numpy() < 6)
    np.testing.assert_array_equal(grad[inside], 1.0)  # straight through the rounding
    np.testing.assert_array_equal(grad[(x.numpy() < 0) | (x.numpy() > 6)], 0.0)  # clipped
    assert FeatureQuantizer.from_config(layer.get_config()).high == 6.0
