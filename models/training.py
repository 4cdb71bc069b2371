"""Training and evaluating classifiers on in-memory image data (seeded, for small data sets).

Used to train a base model and its butterfly variants "the same way": the same optimizer, learning
rate, batch size, shuffling seed and data. Keras' ``fit`` shuffles with the global seed that
:func:`train_classifier` sets, so a run is repeatable on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.errors import DatasetError

if TYPE_CHECKING:
    import keras

    from models.datasets import ImageDataset

__all__ = ["TrainConfig", "accuracy", "outputs_logits", "train_classifier"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings: Adam at ``learning_rate`` for ``epochs`` over batches of ``batch_size``."""

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    bn_momentum: float | None = 0.9  # BatchNormalization momentum while training (None: the model's own)


def outputs_logits(model: keras.Model) -> bool:
    """True if the model ends without a softmax (so the loss must take logits)."""
    last = model.layers[-1]
    if type(last).__name__ == "Softmax":
        return False
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "linear") != "softmax"


def train_classifier(
    model: keras.Model, data: ImageDataset, config: TrainConfig = TrainConfig()
) -> list[float]:
    """Train ``model`` in place on ``data``'s training part; returns the mean loss of every epoch."""
    import keras

    classes = int(model.outputs[0].shape[-1])
    if data.num_classes > classes:
        raise DatasetError(
            f"data set {data.name!r} has {data.num_classes} classes but model {model.name!r} outputs {classes}"
        )
    if tuple(model.inputs[0].shape[1:]) != data.image_shape:
        raise DatasetError(
            f"data set {data.name!r} has images {data.image_shape}; model {model.name!r} takes "
            f"{tuple(model.inputs[0].shape[1:])}"
        )
    if config.epochs <= 0:
        return []
    keras.utils.set_random_seed(config.seed)
    # Keras' default BN momentum (0.99) needs thousands of steps before the moving statistics that
    # inference uses match the data; a small data set gives a few hundred, so train with a faster one.
    saved = {}
    if config.bn_momentum is not None:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                saved[layer.name] = layer.momentum
                layer.momentum = config.bn_momentum
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
    )
    history = model.fit(
        data.x_train,
        data.y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        verbose=0,
    )
    for name, momentum in saved.items():
        model.get_layer(name).momentum = momentum
    return [float(v) for v in history.history["loss"]]


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` on ``x`` with labels ``y`` (inference mode)."""
    scores = model.predict(x, batch_size=batch_size, verbose=0)  # (N, classes)
    return float(np.mean(np.argmax(scores, axis=-1) == y))
