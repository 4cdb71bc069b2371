"""The 8-bit feature quantizer Keras layer used at a bottleneck cut (butterfly unit, PCA baseline).

It rounds its input to 256 levels over a fixed range ``[low, high]`` in every mode (training and
inference), so the Keras model computes exactly what the cloud half receives. In training the gradient
passes straight through the rounding (straight-through estimator, Bengio et al. 2013) and is zero
outside the range (the clip). This module imports Keras at module level: import it only where a model
is built or loaded (``models.butterfly`` does so inside its functions).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["LEVELS", "FeatureQuantizer"]

LEVELS = 255  # 8 bits: codes 0..255


@keras.saving.register_keras_serializable(package="jointdnn")
class FeatureQuantizer(keras.layers.Layer):
    """Rounds to 256 levels over ``[low, high]`` (step = (high - low) / 255); gradient straight through."""

    def __init__(self, low: float = 0.0, high: float = 6.0, **kwargs: Any):
        super().__init__(**kwargs)
        if not high > low:
            raise ValueError(f"FeatureQuantizer needs high > low, got [{low}, {high}]")
        self.low = float(low)
        self.high = float(high)

    @property
    def step(self) -> float:  # quantization step, in the units of the features
        return (self.high - self.low) / LEVELS

    def call(self, inputs: Any) -> Any:
        clipped = ops.clip(inputs, self.low, self.high)
        codes = ops.round((clipped - self.low) * (1.0 / self.step))  # 0..255, float
        rounded = codes * self.step + self.low  # on the 8-bit grid
        # Forward value: rounded; gradient: d(clipped)/d(inputs) (identity inside the range).
        return clipped + ops.stop_gradient(rounded - clipped)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "low": self.low, "high": self.high}
