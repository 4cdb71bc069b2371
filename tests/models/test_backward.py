"""Backward ``.tflite`` of builtin ops only: gradients equal TensorFlow's (``tf.GradientTape``).

small_cnn (conv, batch norm, ReLU, max pooling, dense) segment by segment, and a MobileNetV2-shaped toy
(depthwise with stride 2, zero padding, ReLU6, add, global average pooling, dense + softmax) whole.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from models.backward import backward_graph, convert_backward, reference_gradients
from models.errors import ConversionError
from models.graph import analyze
from models.runtime import interpreter_class

RTOL = 1e-4  # of each gradient's largest magnitude; float32 sums in another order differ at ~1e-7


def _litert_gradients(data: bytes, x: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    runner = interpreter_class()(model_content=data).get_signature_runner()
    result = runner(x=x, grad=g)
    return [np.asarray(result[key]) for key in sorted(result)]


def _check(model: Any, start: int, stop: int, seed: int) -> list[str]:
    graph = analyze(model)
    backward = backward_graph(model, graph, start, stop)
    data = convert_backward(backward)  # BUILTIN ops only, or ConversionError
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(backward.input_shape).astype(np.float32)
    g = rng.standard_normal(backward.output_shape).astype(np.float32)
    got = _litert_gradients(data, x, g)
    expected = reference_gradients(model, graph, start, stop, x, g)
    assert len(got) == len(expected) == len(backward.output_names)
    for name, a, b in zip(backward.output_names, got, expected, strict=True):
        assert a.shape == b.shape, name
        scale = float(np.abs(b).max()) or 1.0
        np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * scale, err_msg=name)
    return backward.output_names


@pytest.fixture(scope="module")
def small_cnn() -> Any:
    from models.zoo import load_model

    return load_model("small_cnn")


def test_small_cnn_gradients_equal_tensorflows(small_cnn: Any) -> None:
    n = analyze(small_cnn).num_segments
    bounds = [
        0,
        3,
        6,
        n,
    ]  # three ranges cover every layer (conv/bn/relu, pool, flatten, dense) in 3 conversions
    for start, stop in itertools.pairwise(bounds):
        names = _check(small_cnn, start, stop, seed=start)
        assert (names[0] == "input") == (start > 0)  # segment 0's input is data: no input gradient
        assert any("kernel" in name for name in names)


def _mobilenet_like() -> Any:
    import keras
    from keras import layers

    x = inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    skip = x
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(8, 1, use_bias=False)(x)
    x = layers.Add()([skip, x])
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid", depth_multiplier=2, use_bias=True)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # non-trivial batch-norm statistics
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.moving_mean.assign(rng.standard_normal(c).astype(np.float32) * 0.1)
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype(np.float32))
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
    return model


def test_depthwise_stride_padding_add_softmax_gradients_equal_tensorflows() -> None:
    model = _mobilenet_like()
    n = analyze(model).num_segments
    names = _check(model, 0, n, seed=7)
    assert sum("kernel" in name for name in names) == 5  # 2 conv, 2 depthwise, 1 dense
    _check(model, 1, n, seed=8)  # with an input gradient through the residual block


def test_a_layer_without_a_builtin_backward_is_named() -> None:
    import keras
    from keras import layers

    inputs = keras.Input((9, 9, 4))
    model = keras.Model(inputs, layers.MaxPooling2D(3, strides=2, name="overlapping_pool")(inputs))
    with pytest.raises(ConversionError, match=r"overlapping_pool.*non-overlapping"):
        backward_graph(model, analyze(model), 0, analyze(model).num_segments)
