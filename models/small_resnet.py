"""A small residual network for 32x32x3 images (the butterfly unit's second base model on digits).

Three stages of one basic residual block each (16, 32, 64 channels; stages 2 and 3 downsample by a
stride-2 convolution with a 1x1 projection shortcut), global average pooling and a dense classifier.
Cut points are the stem and the block outputs (``stageN_out``, the ReLU after the add). Layer names are
explicit, so they are the same in every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

__all__ = ["build_small_resnet"]


def _block(x: Any, filters: int, stride: int, name: str) -> Any:
    from keras import layers

    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or int(x.shape[-1]) != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_small_resnet(
    *, input_shape: tuple[int, int, int] = (32, 32, 3), classes: int = 10, seed: int = 0
) -> keras.Model:
    """32x32x3 -> ``classes`` logits; ~80k parameters; seeded random weights."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(input_shape, name="input")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)  # (N, 32, 32, 16)
    x = _block(x, 16, 1, "stage1")  # (N, 32, 32, 16)
    x = _block(x, 32, 2, "stage2")  # (N, 16, 16, 32)
    x = _block(x, 64, 2, "stage3")  # (N, 8, 8, 64)
    x = layers.GlobalAveragePooling2D(name="pool")(x)  # (N, 64)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_resnet")
