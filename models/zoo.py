"""The model zoo: Keras builders by name with seeded random weights, and loading a user's own model.

No weights can be downloaded here, so every zoo model is built with ``weights=None`` after
``keras.utils.set_random_seed(seed)``: the same name and seed give the same weights in every process,
which is what the artifact cache relies on. Layer names of the hand-written models are explicit so that
they do not depend on Keras' per-process name counters.
"""

from __future__ import annotations

import difflib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import ModelFileError, UnknownModelError
from models.tf_import import ensure_tensorflow

if TYPE_CHECKING:
    import keras

__all__ = ["MODEL_NAMES", "build_model", "input_shape", "load_model"]

MODEL_NAMES: tuple[str, ...] = ("alexnet", "mobilenet_v2", "resnet50", "small_cnn", "vgg16")

_INPUT_SHAPES: dict[str, tuple[int, int, int]] = {  # (H, W, C) without the batch dimension
    "alexnet": (224, 224, 3),
    "mobilenet_v2": (224, 224, 3),
    "resnet50": (224, 224, 3),
    "small_cnn": (32, 32, 3),
    "vgg16": (224, 224, 3),
}


def input_shape(name: str) -> tuple[int, int, int]:
    """Input shape (H, W, C) of a zoo model, without building it."""
    _check_name(name)
    return _INPUT_SHAPES[name]


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        close = difflib.get_close_matches(name, MODEL_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint}; known models: {', '.join(MODEL_NAMES)}, "
            "or a path to a .keras / SavedModel file"
        )


def _small_cnn() -> keras.Model:
    """32x32x3 -> 10 classes: three conv/bn/relu/pool blocks, then dense/relu and a dense classifier."""
    import keras
    from keras import layers

    x = inputs = keras.Input((32, 32, 3), name="input")
    for block, filters in enumerate((16, 32, 64), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)  # 32 -> 16 -> 8 -> 4
    x = layers.Flatten(name="flatten")(x)  # (N, 4*4*64)
    x = layers.Dense(64, name="fc1")(x)
    x = layers.ReLU(name="fc1_relu")(x)
    outputs = layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def _alexnet() -> keras.Model:
    """AlexNet (Krizhevsky et al. 2012, single-tower variant) for 224x224x3 input, 1000 classes."""
    import keras
    from keras import layers

    x = inputs = keras.Input((224, 224, 3), name="input")
    convs = [  # (filters, kernel, stride, pool after)
        (64, 11, 4, True),
        (192, 5, 1, True),
        (384, 3, 1, False),
        (256, 3, 1, False),
        (256, 3, 1, True),
    ]
    for i, (filters, kernel, stride, pool) in enumerate(convs, start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", name=f"conv{i}")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)  # 56 -> 27 -> 13 -> 6
    x = layers.Flatten(name="flatten")(x)  # (N, 6*6*256)
    x = layers.Dense(4096, name="fc6")(x)
    x = layers.ReLU(name="fc6_relu")(x)
    x = layers.Dense(4096, name="fc7")(x)
    x = layers.ReLU(name="fc7_relu")(x)
    x = layers.Dense(1000, name="fc8")(x)
    outputs = layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, outputs, name="alexnet")


def _mobilenet_v2() -> keras.Model:
    import keras

    return keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))


def _resnet50() -> keras.Model:
    import keras

    return keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))


def _vgg16() -> keras.Model:
    import keras

    return keras.applications.VGG16(weights=None, input_shape=(224, 224, 3))


_BUILDERS: dict[str, Callable[[], keras.Model]] = {
    "alexnet": _alexnet,
    "mobilenet_v2": _mobilenet_v2,
    "resnet50": _resnet50,
    "small_cnn": _small_cnn,
    "vgg16": _vgg16,
}


def build_model(name: str, *, seed: int = 0) -> keras.Model:
    """Build zoo model ``name`` with random weights drawn from ``seed`` (same seed, same weights)."""
    _check_name(name)
    ensure_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    model = _BUILDERS[name]()
    _recalibrate_batch_norm(model, seed)
    return model


def _recalibrate_batch_norm(model: keras.Model, seed: int, samples: int = 4) -> None:
    """Set every BatchNormalization's moving statistics to the batch statistics of its real input.

    With random weights and the default moving stats (mean 0, variance 1), activations of deep nets
    shrink layer after layer (MobileNetV2 reaches ~1e-9), which makes int8 quantization and latency
    measurements meaningless. One training-mode pass with momentum 0 on ``samples`` seeded inputs
    uniform in [0, 1) keeps activations at unit scale, as in a trained model.
    """
    import numpy as np
    from keras import layers

    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    x = np.random.default_rng(seed).random((samples, *model.inputs[0].shape[1:]), dtype=np.float32)
    try:
        model(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum


def load_model(name_or_path: str | Path, *, seed: int = 0) -> keras.Model:
    """A zoo model by name, or a user's ``.keras`` / ``.h5`` file or SavedModel directory.

    Raises :class:`UnknownModelError` for a name that is neither in the zoo nor an existing path, and
    :class:`ModelFileError` for a file that cannot be loaded as a functional Keras model.
    """
    text = str(name_or_path)
    if text in MODEL_NAMES:
        return build_model(text, seed=seed)
    path = Path(text)
    if not path.exists():
        if path.suffix or "/" in text:
            raise ModelFileError(f"model file {path} does not exist")
        _check_name(text)
    ensure_tensorflow()
    import keras

    import models.feature_quantizer  # noqa: F401  (registers the butterfly's layer for deserialisation)

    try:
        if path.is_dir():
            model = _load_saved_model(path)
        elif path.suffix == ".keras" and not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path} is not a valid .keras file (not a zip archive); is it truncated?")
        else:
            model = keras.saving.load_model(path, compile=False)
    except ModelFileError:
        raise
    except Exception as exc:  # Keras raises many types (ValueError, OSError, zipfile errors...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"cannot load model file {path}: {first[:200]} (expected a .keras/.h5 file or a SavedModel dir)"
        ) from None
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ModelFileError(f"{path} is not a functional Keras model (subclassed models cannot be split)")
    return model


def _load_saved_model(path: Path) -> keras.Model:
    """A SavedModel directory saved by Keras (``keras_metadata`` / ``*.keras`` inside) as a Keras model."""
    import keras

    inner = sorted(path.glob("*.keras"))
    if inner:
        return keras.saving.load_model(inner[0], compile=False)
    if not (path / "saved_model.pb").is_file():
        raise ModelFileError(f"{path} is a directory but not a SavedModel (no saved_model.pb)")
    raise ModelFileError(
        f"{path} is a plain TensorFlow SavedModel; its layer graph is lost, so it cannot be cut. "
        "Save the Keras model with model.save('model.keras') and pass that file"
    )
