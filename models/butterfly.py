"""The butterfly unit: a trained bottleneck at a cut point that shrinks what crosses the network.

After the paper "Towards Collaborative Intelligence Friendly Architectures for Deep Learning"
(Eshratifar et al.) and BottleNet: a **reduction** unit runs on the phone right after a chosen cut

    1x1 Conv2D to c' channels (optionally stride 2) -> BatchNormalization -> bounded activation
    -> 8-bit quantizer (per-tensor, fixed range of the bounded activation)

its output (``c'`` channels, 8 bits each) crosses the network, and a **restoration** unit starts the
cloud half

    1x1 Conv2D back to C channels (a 2x2 stride-2 Conv2DTranspose when the reduction used stride 2)
    -> BatchNormalization -> the activation the base model used at the cut

The quantizer rounds to 256 levels in every mode; in training the gradient passes straight through it
(straight-through estimator), so the network learns to live with the quantization noise.

The layer named :data:`REDUCE_LAYER` ("butterfly_reduce", the quantizer) is a plain chain layer, so it is
an ordinary, very cheap cut point for :func:`models.graph.analyze`: export, profiling, the planner, the
server and ``jointdnn run`` handle a butterfly model unchanged. Its 8-bit payload and optional lossless
entropy coding (zstd) are produced by :func:`encode_features` / :func:`decode_features`.

Bytes on the wire: in an int8 bundle the cut tensor is int8 (1 byte per value, scale calibrated to the
activation's range, so the grid matches); in fp32/fp16 bundles it is a float tensor whose values lie on
the 8-bit grid, so a sender that wants 1 byte per value codes it with :func:`encode_features`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from models.errors import InvalidCutError, UsageError

if TYPE_CHECKING:
    import keras

__all__ = [
    "ACTIVATION_RANGES",
    "REDUCE_LAYER",
    "RESTORE_LAYER",
    "ButterflyConfig",
    "EncodedFeatures",
    "FeatureQuantizer",
    "check_butterfly_cut",
    "cut_activation",
    "decode_features",
    "dequantize_features",
    "encode_features",
    "insert_bottleneck",
    "insert_butterfly",
    "quantize_features",
]

REDUCE_LAYER = "butterfly_reduce"  # the quantizer: its output is what crosses the network
RESTORE_LAYER = "butterfly_restore"  # the last layer of the restoration unit

BoundedActivation = Literal["relu6", "sigmoid", "tanh"]
ACTIVATION_RANGES: dict[str, tuple[float, float]] = {  # output range (low, high) of each bounded activation
    "relu6": (0.0, 6.0),
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}
LEVELS = 255  # 8 bits: codes 0..255 (same as models.feature_quantizer.LEVELS)


@dataclass(frozen=True)
class ButterflyConfig:
    """What to insert: ``channels`` c' at the cut, ``stride`` 1 or 2, the bounded ``activation``."""

    channels: int
    stride: int = 1
    activation: BoundedActivation = "relu6"

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise UsageError(f"butterfly channels must be >= 1, got {self.channels}")
        if self.stride not in (1, 2):
            raise UsageError(f"butterfly stride must be 1 or 2, got {self.stride}")
        if self.activation not in ACTIVATION_RANGES:
            raise UsageError(
                f"unknown bounded activation {self.activation!r}; choose one of {', '.join(ACTIVATION_RANGES)}"
            )

    @property
    def value_range(self) -> tuple[float, float]:
        return ACTIVATION_RANGES[self.activation]


# --------------------------------------------------------------------------------------------------
# 8-bit wire format (numpy, no TensorFlow)


def quantize_features(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Float features -> uint8 codes on 256 levels over ``[low, high]`` (round to nearest, clamp)."""
    step = (high - low) / LEVELS
    codes = np.round((x.astype(np.float32) - np.float32(low)) * np.float32(1.0 / step))  # as the layer
    return np.clip(codes, 0, LEVELS).astype(np.uint8)


def dequantize_features(codes: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 codes -> float32 features: ``low + code * step``; |error| <= step / 2 inside the range."""
    step = (high - low) / LEVELS
    return (np.float32(low) + codes.astype(np.float32) * np.float32(step)).astype(np.float32)


@dataclass
class EncodedFeatures:
    """The bytes that cross the network for one tensor, and what the receiver needs to decode them."""

    payload: bytes
    shape: tuple[int, ...]
    low: float
    high: float
    codec: Literal["raw", "zstd"]

    @property
    def nbytes(self) -> int:  # bytes on the wire (payload only; shape and range are a few bytes more)
        return len(self.payload)


def encode_features(
    x: np.ndarray, low: float, high: float, *, codec: Literal["raw", "zstd"] = "raw", level: int = 3
) -> EncodedFeatures:
    """Quantize ``x`` to 8 bits and optionally compress the codes losslessly with zstd."""
    raw = quantize_features(x, low, high).tobytes()
    if codec == "zstd":
        import zstandard

        raw = zstandard.ZstdCompressor(level=level).compress(raw)
    elif codec != "raw":
        raise UsageError(f"unknown feature codec {codec!r}; choose raw or zstd")
    return EncodedFeatures(payload=raw, shape=tuple(x.shape), low=low, high=high, codec=codec)


def decode_features(encoded: EncodedFeatures) -> np.ndarray:
    """Inverse of :func:`encode_features` (exact on the 8-bit codes)."""
    raw = encoded.payload
    if encoded.codec == "zstd":
        import zstandard

        raw = zstandard.ZstdDecompressor().decompress(raw)
    codes = np.frombuffer(raw, dtype=np.uint8).reshape(encoded.shape)
    return dequantize_features(codes, encoded.low, encoded.high)


# --------------------------------------------------------------------------------------------------
# Keras layers and the graph transform


def FeatureQuantizer(low: float = 0.0, high: float = 6.0, **kwargs: Any) -> keras.layers.Layer:
    """A new 8-bit straight-through quantizer layer over ``[low, high]`` (see models.feature_quantizer)."""
    from models.feature_quantizer import FeatureQuantizer as Layer

    return Layer(low=low, high=high, **kwargs)


def cut_activation(model: keras.Model, cut_layer: str) -> Any:
    """The activation the base model applied at ``cut_layer`` (its output's nonlinearity).

    Walks back through shape-only layers (pooling, dropout, flatten, reshape, padding) to the first
    layer that has an activation: a ReLU/Activation layer, or a conv/dense ``activation`` argument.
    Returns a Keras layer config-able activation: a ``keras.layers.ReLU`` config dict or a name.
    """
    passthrough = {"MaxPooling2D", "AveragePooling2D", "Dropout", "ZeroPadding2D", "Cropping2D", "Identity"}
    layer = model.get_layer(cut_layer)
    for _ in range(len(model.layers)):
        kind = type(layer).__name__
        if kind == "ReLU":
            return {"class": "ReLU", "config": layer.get_config()}
        if kind in ("Activation", "LeakyReLU", "ELU", "Softmax"):
            return {"class": kind, "config": layer.get_config()}
        activation = getattr(layer, "activation", None)
        if activation is not None and kind not in passthrough:
            name = getattr(activation, "__name__", "linear")
            return {"class": "Activation", "config": {"activation": name}}
        if kind not in passthrough:
            break
        parents = layer._inbound_nodes[0].parent_nodes if layer._inbound_nodes else []
        if len(parents) != 1:
            break
        layer = parents[0].operation
    return {"class": "Activation", "config": {"activation": "linear"}}


def _activation_layer(spec: dict[str, Any], name: str) -> keras.layers.Layer:
    import keras

    config = {k: v for k, v in spec["config"].items() if k not in ("name", "trainable", "dtype")}
    cls = getattr(keras.layers, spec["class"])
    return cls(name=name, **config)


def _bounded_activation(kind: str, name: str) -> keras.layers.Layer:
    import keras

    if kind == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=name)  # TFLite fuses Conv+BN+ReLU6
    return keras.layers.Activation(kind, name=name)


def check_butterfly_cut(model: keras.Model, cut_layer: str) -> keras.layers.Layer:
    """The layer ``cut_layer`` if a butterfly can go after it: a 4-D cut point of a model without one.

    Raises :class:`InvalidCutError` (naming the nearest valid cuts) or :class:`UsageError`.
    """
    names = [layer.name for layer in model.layers]
    if cut_layer not in names:
        raise InvalidCutError(f"model {model.name!r} has no layer {cut_layer!r}")
    if any(name.startswith("butterfly_") for name in names):
        raise UsageError(f"model {model.name!r} already has a butterfly unit; insert into the base model")
    layer = model.get_layer(cut_layer)
    shape = tuple(layer.output.shape)
    if len(shape) != 4:
        raise InvalidCutError(
            f"layer {cut_layer!r} outputs shape {shape}; a butterfly unit needs a 4-D (N, H, W, C) feature map"
        )
    from models.graph import analyze

    graph = analyze(model)
    if cut_layer not in graph.cut_layers:
        graph.check_cut(cut_layer)  # raises InvalidCutError with the reason and the nearest cuts
    return layer


def insert_bottleneck(
    model: keras.Model,
    cut_layer: str,
    build: Any,
    *,
    name_suffix: str = "butterfly",
    copy_weights: bool = True,
) -> keras.Model:
    """A copy of ``model`` with ``build(tensor) -> tensor`` applied to the output of ``cut_layer``.

    The base layers are cloned (same names and configs) and, if ``copy_weights``, get the base model's
    weights, so training the new model does not change the base model.
    """
    import keras

    def call_function(layer: Any, *args: Any, **kwargs: Any) -> Any:
        out = layer(*args, **kwargs)
        return build(out) if layer.name == cut_layer else out

    clone = keras.models.clone_model(model, call_function=call_function)
    new = keras.Model(clone.inputs, clone.outputs, name=f"{model.name}_{name_suffix}")
    if copy_weights:
        for layer in model.layers:
            if layer.weights:
                new.get_layer(layer.name).set_weights(layer.get_weights())
    return new


def insert_butterfly(model: keras.Model, cut_layer: str, config: ButterflyConfig | int) -> keras.Model:
    """A copy of ``model`` with a butterfly unit inserted after ``cut_layer``, base weights copied.

    ``cut_layer`` must be a cut point of the base model with a 4-D output ``(N, H, W, C)``; the result
    has a new cut point :data:`REDUCE_LAYER` whose output is ``(N, H/s, W/s, c')`` on an 8-bit grid.
    """
    import keras
    from keras import layers

    cfg = ButterflyConfig(channels=config) if isinstance(config, int) else config
    cut = check_butterfly_cut(model, cut_layer)
    _, height, width, channels = (int(d) if d is not None else 0 for d in cut.output.shape)
    if cfg.stride == 2 and (height % 2 or width % 2):
        raise InvalidCutError(
            f"layer {cut_layer!r} outputs {height}x{width}: a stride-2 butterfly needs even height and width"
        )
    restore_act = cut_activation(model, cut_layer)
    low, high = cfg.value_range

    def build(x: Any) -> Any:
        x = layers.Conv2D(cfg.channels, 1, strides=cfg.stride, use_bias=False, name="butterfly_reduce_conv")(
            x
        )  # (N, H/s, W/s, c')
        x = layers.BatchNormalization(name="butterfly_reduce_bn")(x)
        x = _bounded_activation(cfg.activation, "butterfly_reduce_act")(x)
        x = FeatureQuantizer(low, high, name=REDUCE_LAYER)(x)  # 8-bit grid: the tensor that is sent
        if cfg.stride == 2:
            x = layers.Conv2DTranspose(channels, 2, strides=2, use_bias=False, name="butterfly_restore_conv")(
                x
            )  # (N, H, W, C)
        else:
            x = layers.Conv2D(channels, 1, use_bias=False, name="butterfly_restore_conv")(x)
        x = layers.BatchNormalization(name="butterfly_restore_bn")(x)
        return _activation_layer(restore_act, RESTORE_LAYER)(x)

    keras.utils.set_random_seed(0)  # butterfly initial weights do not depend on earlier draws
    return insert_bottleneck(model, cut_layer, build, name_suffix=f"butterfly{cfg.channels}")


def butterfly_cut_bytes(model: keras.Model) -> int:
    """Bytes of the 8-bit tensor a butterfly model sends for one input (before entropy coding)."""
    shape = model.get_layer(REDUCE_LAYER).output.shape
    return int(np.prod([int(d) for d in shape[1:]]))
