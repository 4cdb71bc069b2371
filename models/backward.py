"""A segment's backward pass as a ``.tflite`` of BUILTIN ops only, so stock ``benchmark_model`` can time it.

Inputs: the segment input ``x`` (N, ...) and the upstream gradient ``g`` (dLoss/dOutput, the output's
shape). Outputs, in this order: the input gradient ``dx`` (omitted for segment 0, whose input is data),
then the gradient of every trainable weight in the order of ``segment_model(...).trainable_weights``.

``tf.GradientTape`` gradients do not convert to builtins: ``Conv2DBackpropFilter``, ``ReluGrad``,
``MaxPoolGrad`` and ``DepthwiseConv2dNativeBackprop*`` need the Flex delegate, which stock
``benchmark_model`` lacks. So the graph is written here layer by layer with forward ops:

* conv / depthwise conv, input gradient: zero-insert ``g`` by the stride, pad by ``k-1``, correlate
  with the spatially flipped kernel (``CONV_2D`` / ``DEPTHWISE_CONV_2D``), crop the forward padding;
* conv filter gradient: per kernel tap, the window of the padded input that tap sees (unit-stride
  slices of the ``SPACE_TO_DEPTH`` phases for strided convs) times ``g`` as one matrix product
  (``FULLY_CONNECTED``/``BATCH_MATMUL``); depthwise: per tap, the window times ``g`` summed over
  pixels (``MUL``, ``SUM``). Measured pitfalls this avoids: convolutions with a non-constant filter
  (``g`` as a huge dilated filter) run on TFLite's generic kernels, strided ``STRIDED_SLICE`` and
  ``PACK``/``CONCATENATION`` on large tensors are 10-200x slower than unit-stride slices, ``PAD`` and
  ``DEPTH_TO_SPACE``; a first version built on them ran MobileNetV2 backward passes at 100-900x forward;
* ReLU / ReLU6: a mask multiply (``0 < z < max``, in float ops, see :func:`_relu_mask`); batch norm (frozen statistics, as
  on-device fine-tuning runs it): a per-channel scale, and reductions for gamma/beta;
* non-overlapping max pooling: the mask ``x == upsample(max)`` times the upsampled gradient (ties share
  the gradient where TensorFlow routes it to the first maximum: they arise only where an upstream
  ReLU was inactive, and its mask zeroes them anyway); average and global average pooling: spreading;
* dense: ``g @ W^T`` and the outer product ``x^T g``; softmax: ``y * (g - sum(g * y))``;
  add, flatten/reshape, zero padding, dropout: routing, reshaping, cropping, identity.

The forward activations a backward pass needs (conv inputs, ReLU masks) are recomputed from ``x``
inside the graph, as activation checkpointing does: a backward of a conv segment costs about
forward (recompute) + input gradient + filter gradient, i.e. ~3x its forward in arithmetic.

Layers not listed (overlapping pooling, grouped or dilated convolutions, other activations, recurrent
layers) raise :class:`~models.errors.ConversionError` naming the layer. See ``docs/devices.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.cache import ArtifactCache, CachedArtifact
from models.errors import ConversionError
from models.fingerprint import digest_bytes, layer_digests
from models.tf_import import ensure_tensorflow

if TYPE_CHECKING:
    import keras

    from models.graph import LayerGraph

__all__ = [
    "BACKWARD_FORMAT",
    "BackwardGraph",
    "backward_artifact",
    "backward_graph",
    "convert_backward",
    "output_key",
    "reference_gradients",
]

BACKWARD_FORMAT = "jointdnn-backward-4"  # bump when the recipe changes, to invalidate cached artifacts


@dataclass
class BackwardGraph:
    """A traced backward function of segments ``start..stop-1`` and what its outputs are."""

    function: Any  # tf ConcreteFunction (x, g) -> list of gradients
    input_shape: tuple[int, ...]  # x: (N, ...)
    output_shape: tuple[int, ...]  # g: the segment output's shape
    output_names: list[str] = field(default_factory=list)  # "input" then weight paths
    weights: list[Any] = field(default_factory=list)  # the Keras variables, in output order
    trackable: Any = None  # the Keras segment model the function closes over (for the converter)


def output_key(position: int) -> str:
    """Signature name of the backward's ``position``-th output (``grad_000`` = input gradient or first weight)."""
    return f"grad_{position:03d}"


def _pads(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """TensorFlow's (before, after) padding of one spatial dimension."""
    if padding == "valid":
        return 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _zero_insert(tf: Any, g: Any, stride: int) -> Any:
    """(N, OH, OW, C) -> (N, (OH-1)*s+1, (OW-1)*s+1, C) with ``s-1`` zeros between neighbours.

    Channel-padded to ``s*s*C`` then ``DEPTH_TO_SPACE``: ``g`` lands on the top-left of every s x s
    block (PACK/CONCATENATION of the same tensors run ~10x slower in TFLite).
    """
    if stride == 1:
        return g
    _, oh, ow, c = (int(d) for d in g.shape)
    spread = tf.nn.depth_to_space(tf.pad(g, [[0, 0], [0, 0], [0, 0], [0, (stride * stride - 1) * c]]), stride)
    return spread[:, : (oh - 1) * stride + 1, : (ow - 1) * stride + 1, :]


def _windows(tf: Any, x_pad: Any, kh: int, kw: int, oh: int, ow: int, stride: int) -> list[Any]:
    """For every kernel tap (row-major), the (N, OH, OW, C) pixels of ``x_pad`` it multiplies.

    Stride 1: unit-stride slices. Stride s: ``SPACE_TO_DEPTH`` splits ``x_pad`` into its s*s phases once,
    and each tap is a unit-stride slice of one phase (TFLite's STRIDED_SLICE with strides > 1 is ~200x
    slower than with unit strides).
    """
    if stride == 1:
        return [x_pad[:, i : i + oh, j : j + ow, :] for i in range(kh) for j in range(kw)]
    _, hp, wp, c = (int(d) for d in x_pad.shape)
    extra_h, extra_w = (-hp) % stride, (-wp) % stride
    if extra_h or extra_w:
        x_pad = tf.pad(x_pad, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])
    phases = tf.nn.space_to_depth(x_pad, stride)  # (N, Hp/s, Wp/s, s*s*C), phase (a, b) at block a*s+b
    windows = []
    for i in range(kh):
        for j in range(kw):
            block = (i % stride) * stride + j % stride
            windows.append(
                phases[
                    :,
                    i // stride : i // stride + oh,
                    j // stride : j // stride + ow,
                    block * c : (block + 1) * c,
                ]
            )
    return windows


def _upsample(tf: Any, y: Any, k: int) -> Any:
    """Nearest-neighbour upsampling by an integer factor (``RESIZE_NEAREST_NEIGHBOR``)."""
    h, w = int(y.shape[1]) * k, int(y.shape[2]) * k
    return tf.raw_ops.ResizeNearestNeighbor(
        images=y, size=(h, w), align_corners=False, half_pixel_centers=False
    )


_STEP = 2.0**100  # mask slope: any z >= 2**-100 saturates to 1 (float32 reaches 2**127)


def _relu_mask(tf: Any, z: Any, top: float | None = None) -> Any:
    """1.0 where ``0 < z`` (and ``z < top``), else 0.0, in float ops only (MUL, RELU, MINIMUM).

    Comparisons and casts (GREATER, LOGICAL_AND, CAST) are not taken by XNNPACK and TFLite's own
    kernels for them were ~50x slower than a MUL on a MobileNetV2-sized tensor. ``min(relu(z * 2**100), 1)``
    equals the mask exactly except for 0 < z < 2**-100 (~8e-31), where it is fractional.
    """
    mask = tf.minimum(tf.nn.relu(z * _STEP), 1.0)
    if top is not None:
        mask = mask * tf.minimum(tf.nn.relu((top - z) * _STEP), 1.0)
    return mask


def _activation_grad(tf: Any, name: str, z: Any, y: Any, g: Any, layer: Any) -> Any:
    """dLoss/dz from dLoss/dy for a layer's fused activation."""
    if name == "linear":
        return g
    if name == "relu":
        return g * _relu_mask(tf, z)
    if name == "relu6":
        return g * _relu_mask(tf, z, 6.0)
    if name == "softmax":
        return y * (g - tf.reduce_sum(g * y, axis=-1, keepdims=True))
    raise ConversionError(f"layer {layer.name!r}: activation {name!r} has no builtin backward here")


def _activation(tf: Any, name: str, z: Any) -> Any:
    return {
        "linear": lambda v: v,
        "relu": tf.nn.relu,
        "relu6": tf.nn.relu6,
        "softmax": tf.nn.softmax,
    }[name](z)


def _activation_name(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "linear") if act is not None else "linear"
    if name not in ("linear", "relu", "relu6", "softmax"):
        raise ConversionError(f"layer {layer.name!r}: activation {name!r} has no builtin backward here")
    return name


class _Tape:
    """Forward values and the backward closures of one segment, recorded layer by layer."""

    def __init__(self, tf: Any, arrays: dict[int, np.ndarray]):
        self.tf = tf
        self.arrays = arrays  # id(variable) -> its value, read eagerly before tracing
        self.backward: list[tuple[list[int], int, Callable[[Any], list[Any]]]] = []
        self.weight_grads: dict[int, Any] = {}  # id(variable) -> gradient

    def array(self, variable: Any) -> np.ndarray:
        """A weight's value as a numpy array (baked into the graph as a constant)."""
        return self.arrays[id(variable)]

    def add_weight_grad(self, variable: Any, grad: Any) -> None:
        key = id(variable)
        self.weight_grads[key] = grad if key not in self.weight_grads else self.weight_grads[key] + grad


def _const(tape: _Tape, variable: Any) -> Any:
    return tape.tf.constant(tape.array(variable))


def _conv(tape: _Tape, layer: Any, x: Any, depthwise: bool) -> tuple[Any, Callable[[Any], list[Any]]]:
    tf = tape.tf
    sh, sw = (int(s) for s in layer.strides)
    if tuple(int(d) for d in layer.dilation_rate) != (1, 1) or int(getattr(layer, "groups", 1) or 1) != 1:
        raise ConversionError(
            f"layer {layer.name!r}: dilated or grouped convolutions have no builtin backward here"
        )
    if sh != sw:
        raise ConversionError(f"layer {layer.name!r}: unequal strides have no builtin backward here")
    kernel_var = getattr(layer, "depthwise_kernel", None) if depthwise else None
    kernel_var = kernel_var if kernel_var is not None else layer.kernel  # Keras 3 names both "kernel"
    kernel = tape.array(kernel_var)  # (KH, KW, Cin, Cout) or (KH, KW, C, M)
    kh, kw = kernel.shape[:2]
    n, h, w, cin = (int(d) for d in x.shape)
    pt, pb = _pads(h, kh, sh, layer.padding)
    pl, pr = _pads(w, kw, sw, layer.padding)
    x_pad = tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]])
    if depthwise:
        z = tf.nn.depthwise_conv2d(x_pad, tf.constant(kernel), [1, sh, sw, 1], "VALID")
    else:
        z = tf.nn.conv2d(x_pad, tf.constant(kernel), sh, "VALID")
    bias = layer.bias if getattr(layer, "use_bias", False) else None
    if bias is not None:
        z = z + _const(tape, bias)
    act = _activation_name(layer)
    y = _activation(tf, act, z)

    def backward(g: Any) -> list[Any]:
        gz = _activation_grad(tf, act, z, y, g, layer)
        _, oh, ow, cout = (int(d) for d in gz.shape)
        if bias is not None:
            tape.add_weight_grad(bias, tf.reduce_sum(gz, axis=[0, 1, 2]))
        flipped = kernel[::-1, ::-1]
        g_pad = tf.pad(_zero_insert(tf, gz, sh), [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
        if depthwise:
            m = kernel.shape[3]
            dx_pad = tf.nn.depthwise_conv2d(
                g_pad, tf.constant(flipped.reshape(kh, kw, cin * m, 1)), [1, 1, 1, 1], "VALID"
            )
            if m > 1:
                shape = (n, int(dx_pad.shape[1]), int(dx_pad.shape[2]), cin, m)
                dx_pad = tf.reduce_sum(tf.reshape(dx_pad, shape), axis=-1)
            # filter: per tap, the window of x_pad it saw times g, summed over pixels -> (C, M)
            pixels = n * oh * ow
            g3 = tf.reshape(gz, (pixels, cin) if m == 1 else (pixels, cin, m))
            taps = [
                tf.reduce_sum(tf.reshape(window, (pixels, cin) if m == 1 else (pixels, cin, 1)) * g3, axis=0)
                for window in _windows(tf, x_pad, kh, kw, oh, ow, sh)
            ]
            dk = tf.reshape(tf.stack(taps), (kh, kw, cin, m))
        else:
            dx_pad = tf.nn.conv2d(
                g_pad, tf.constant(np.ascontiguousarray(flipped.transpose(0, 1, 3, 2))), 1, "VALID"
            )
            # filter: per tap, one GEMM (Cin, P) @ (P, Cout) over the P = N*OH*OW output pixels
            g2 = tf.reshape(gz, (n * oh * ow, cout))
            taps = [
                tf.matmul(tf.reshape(window, (n * oh * ow, cin)), g2, transpose_a=True)
                for window in _windows(tf, x_pad, kh, kw, oh, ow, sh)
            ]
            dk = tf.reshape(tf.stack(taps), (kh, kw, cin, cout))
        tape.add_weight_grad(kernel_var, dk)
        rows, cols = int(dx_pad.shape[1]), int(dx_pad.shape[2])
        extra_h, extra_w = max(0, pt + h - rows), max(0, pl + w - cols)
        if extra_h or extra_w:  # input rows the strided window never reached get no gradient
            dx_pad = tf.pad(dx_pad, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])
        return [dx_pad[:, pt : pt + h, pl : pl + w, :]]

    return y, backward


def _batch_norm(tape: _Tape, layer: Any, x: Any) -> tuple[Any, Callable[[Any], list[Any]]]:
    tf = tape.tf
    if layer.axis not in (-1, len(x.shape) - 1, [-1], [len(x.shape) - 1]):
        raise ConversionError(
            f"layer {layer.name!r}: batch norm over axis {layer.axis} has no builtin backward here"
        )
    mean, var = tape.array(layer.moving_mean), tape.array(layer.moving_variance)
    inv_std = 1.0 / np.sqrt(var + layer.epsilon)
    gamma = tape.array(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = tape.array(layer.beta) if layer.center else np.zeros_like(mean)
    scale = (gamma * inv_std).astype(np.float32)
    y = x * tf.constant(scale) + tf.constant((beta - mean * gamma * inv_std).astype(np.float32))
    axes = list(range(len(x.shape) - 1))

    def backward(g: Any) -> list[Any]:
        if layer.scale:
            x_hat = (x - tf.constant(mean.astype(np.float32))) * tf.constant(inv_std.astype(np.float32))
            tape.add_weight_grad(layer.gamma, tf.reduce_sum(g * x_hat, axis=axes))
        if layer.center:
            tape.add_weight_grad(layer.beta, tf.reduce_sum(g, axis=axes))
        return [g * tf.constant(scale)]

    return y, backward


def _relu_layer(tape: _Tape, layer: Any, x: Any) -> tuple[Any, Callable[[Any], list[Any]]]:
    tf = tape.tf
    slope = float(getattr(layer, "negative_slope", 0.0) or 0.0)
    threshold = float(getattr(layer, "threshold", 0.0) or 0.0)
    max_value = getattr(layer, "max_value", None)
    if slope != 0.0 or threshold != 0.0:
        raise ConversionError(f"layer {layer.name!r}: leaky/thresholded ReLU has no builtin backward here")
    top = None if max_value is None else float(max_value)
    y = tf.nn.relu(x) if top is None else tf.minimum(tf.nn.relu(x), top)

    def backward(g: Any) -> list[Any]:
        return [g * _relu_mask(tf, x, top)]

    return y, backward


def _pool(tape: _Tape, layer: Any, x: Any, kind: str) -> tuple[Any, Callable[[Any], list[Any]]]:
    tf = tape.tf
    k = tuple(int(v) for v in layer.pool_size)
    s = tuple(int(v) for v in layer.strides)
    _, h, w, _ = (int(d) for d in x.shape)
    if k != s or k[0] != k[1] or layer.padding != "valid" or h % k[0] or w % k[1]:
        raise ConversionError(
            f"layer {layer.name!r}: only non-overlapping pooling (pool == stride, valid, dividing the input) "
            f"has a builtin backward here (pool {k}, strides {s}, padding {layer.padding})"
        )
    size = k[0]
    if kind == "max":
        y = tf.nn.max_pool2d(x, size, size, "VALID")
    else:
        y = tf.nn.avg_pool2d(x, size, size, "VALID")

    def backward(g: Any) -> list[Any]:
        spread = _upsample(tf, g, size)
        if kind == "max":
            return [spread * tf.cast(tf.equal(x, _upsample(tf, y, size)), g.dtype)]
        return [spread * (1.0 / (size * size))]

    return y, backward


def _global_avg_pool(tape: _Tape, layer: Any, x: Any) -> tuple[Any, Callable[[Any], list[Any]]]:
    tf = tape.tf
    n, h, w, c = (int(d) for d in x.shape)
    keep = bool(getattr(layer, "keepdims", False))
    y = tf.reduce_mean(x, axis=[1, 2], keepdims=keep)

    def backward(g: Any) -> list[Any]:
        per_pixel = tf.reshape(g, (n, 1, 1, c)) * (1.0 / (h * w))
        return [per_pixel * tf.ones((1, h, w, 1), g.dtype)]

    return y, backward


def _dense(tape: _Tape, layer: Any, x: Any) -> tuple[Any, Callable[[Any], list[Any]]]:
    tf = tape.tf
    if len(x.shape) != 2:
        raise ConversionError(
            f"layer {layer.name!r}: dense on a rank-{len(x.shape)} input has no builtin backward here"
        )
    kernel = tape.array(layer.kernel)  # (Din, Dout)
    z = tf.matmul(x, tf.constant(kernel))
    bias = layer.bias if layer.use_bias else None
    if bias is not None:
        z = z + _const(tape, bias)
    act = _activation_name(layer)
    y = _activation(tf, act, z)

    def backward(g: Any) -> list[Any]:
        gz = _activation_grad(tf, act, z, y, g, layer)
        if bias is not None:
            tape.add_weight_grad(bias, tf.reduce_sum(gz, axis=0))
        # outer product summed over the batch: (Din, N) @ (N, Dout); N = 1 is a broadcast multiply
        dk = tf.reshape(x, (-1, 1)) * gz if int(x.shape[0]) == 1 else tf.matmul(x, gz, transpose_a=True)
        tape.add_weight_grad(layer.kernel, dk)
        return [tf.matmul(gz, tf.constant(np.ascontiguousarray(kernel.T)))]

    return y, backward


def _record(tape: _Tape, layer: Any, inputs: list[Any]) -> tuple[Any, Callable[[Any], list[Any]]]:
    """Forward value of one layer and its backward closure (dLoss/dy -> dLoss/d inputs)."""
    tf = tape.tf
    kind = type(layer).__name__
    x = inputs[0]
    if kind == "Conv2D":
        return _conv(tape, layer, x, depthwise=False)
    if kind == "DepthwiseConv2D":
        return _conv(tape, layer, x, depthwise=True)
    if kind == "BatchNormalization":
        return _batch_norm(tape, layer, x)
    if kind == "ReLU":
        return _relu_layer(tape, layer, x)
    if kind == "Activation":
        act = _activation_name(layer)
        z = x
        y = _activation(tf, act, z)
        return y, lambda g: [_activation_grad(tf, act, z, y, g, layer)]
    if kind == "MaxPooling2D":
        return _pool(tape, layer, x, "max")
    if kind == "AveragePooling2D":
        return _pool(tape, layer, x, "avg")
    if kind == "GlobalAveragePooling2D":
        return _global_avg_pool(tape, layer, x)
    if kind == "Dense":
        return _dense(tape, layer, x)
    if kind == "Add":
        return tf.add_n(inputs), lambda g: [g for _ in inputs]
    if kind in ("Flatten", "Reshape"):
        shape = tuple(int(d) for d in x.shape)
        flat = (
            tf.reshape(x, (shape[0], -1))
            if kind == "Flatten"
            else tf.reshape(x, (shape[0], *layer.target_shape))
        )
        return flat, lambda g: [tf.reshape(g, shape)]
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        _, h, w, _ = (int(d) for d in x.shape)
        y = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
        return y, lambda g: [g[:, top : top + h, left : left + w, :]]
    if kind in ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"):
        return x, lambda g: [g]  # identity at inference (the backward of a frozen-noise step)
    raise ConversionError(f"layer {layer.name!r} ({kind}) has no builtin backward here")


def backward_graph(model: keras.Model, graph: LayerGraph, start: int, stop: int) -> BackwardGraph:
    """Trace the builtin-op backward of segments ``start..stop-1`` (weights baked in as constants)."""
    ensure_tensorflow()
    import tensorflow as tf

    from models.graph import _model_nodes
    from models.split import segment_model

    segment = segment_model(model, graph, start, stop)
    input_shape = (1, *(int(d) for d in segment.inputs[0].shape[1:]))
    output_shape = (1, *(int(d) for d in segment.outputs[0].shape[1:]))
    weights = list(segment.trainable_weights)
    with_input = start > 0
    nodes = [node for node in _model_nodes(segment) if type(node.operation).__name__ != "InputLayer"]
    boundary = segment.inputs[0]

    arrays = {id(v): np.asarray(v) for v in segment.weights}

    def run(x: Any, g: Any) -> dict[str, Any]:
        tape = _Tape(tf, arrays)
        values: dict[int, Any] = {id(boundary): x}
        steps: list[tuple[list[int], int, Callable[[Any], list[Any]]]] = []
        for node in nodes:
            in_keys = [id(t) for t in node.input_tensors]
            out_key = id(node.output_tensors[0])
            y, backward = _record(tape, node.operation, [values[k] for k in in_keys])
            values[out_key] = y
            steps.append((in_keys, out_key, backward))
        grads: dict[int, Any] = {id(segment.outputs[0]): g}
        for in_keys, out_key, backward in reversed(steps):
            if out_key not in grads:
                continue
            for key, grad in zip(in_keys, backward(grads.pop(out_key)), strict=True):
                grads[key] = grad if key not in grads else grads[key] + grad
        outputs = [grads.get(id(boundary), tf.zeros_like(x))] if with_input else []
        for variable in weights:
            grad = tape.weight_grads.get(id(variable))
            outputs.append(grad if grad is not None else tf.zeros(tuple(variable.shape), tf.float32))
        return {output_key(i): grad for i, grad in enumerate(outputs)}  # signature outputs, in order

    function = tf.function(
        run,
        input_signature=[
            tf.TensorSpec(input_shape, tf.float32, name="x"),
            tf.TensorSpec(output_shape, tf.float32, name="grad"),
        ],
        autograph=False,
    ).get_concrete_function()
    names = (["input"] if with_input else []) + [str(getattr(v, "path", v.name)) for v in weights]
    return BackwardGraph(function, input_shape, output_shape, names, weights, segment)


def convert_backward(backward: BackwardGraph) -> bytes:
    """``.tflite`` bytes of a traced backward with BUILTIN ops only; a Flex op is a ConversionError."""
    from models.export import _quiet_native_output

    ensure_tensorflow()
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([backward.function], backward.trackable)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with _quiet_native_output():
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError and friends; name the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"the backward graph needs non-builtin ops: {first}") from None


def backward_artifact(
    model: keras.Model, graph: LayerGraph, start: int, stop: int, *, cache_dir: Path | None = None
) -> CachedArtifact:
    """The cached backward ``.tflite`` of segments ``start..stop-1`` (converted on a miss)."""
    from models.export import converter_version

    cache = ArtifactCache(cache_dir)
    digests = layer_digests(model, graph)
    key = digest_bytes(digests.of_range(graph, start, stop), BACKWARD_FORMAT, converter_version())
    hit = cache.get(key)
    if hit is not None:
        return hit
    backward = backward_graph(model, graph, start, stop)
    data = convert_backward(backward)
    import hashlib

    meta = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "start": start,
        "stop": stop,
        "input_shape": list(backward.input_shape),
        "grad_shape": list(backward.output_shape),
        "outputs": backward.output_names,
    }
    return cache.put(key, data, meta)


def reference_gradients(
    model: keras.Model, graph: LayerGraph, start: int, stop: int, x: np.ndarray, g: np.ndarray
) -> list[np.ndarray]:
    """TensorFlow's own gradients (``tf.GradientTape``, inference-mode layers) in the backward's output order."""
    ensure_tensorflow()
    import tensorflow as tf

    from models.split import segment_model

    segment = segment_model(model, graph, start, stop)
    inp = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inp)
        out = segment(inp, training=False)
        loss = tf.reduce_sum(out * tf.constant(g))  # dLoss/dOutput = g
    targets = ([inp] if start > 0 else []) + list(segment.trainable_weights)
    grads = tape.gradient(loss, targets)
    return [
        np.zeros(tuple(t.shape), np.float32) if gr is None else np.asarray(gr)
        for t, gr in zip(targets, grads, strict=True)
    ]
