"""The training-free baseline for a bottleneck: PCA over the channels of a cut's feature map.

Fit on a calibration set, the device projects every spatial position's C-channel feature vector onto
the top ``k`` principal components, quantizes the ``k`` coefficients to 8 bits (per-tensor range from
the calibration set) and sends them; the cloud reconstructs ``mean + coeffs @ components``. Per position
this is exactly a pair of 1x1 convolutions, which is how :func:`insert_pca` puts it into a Keras model,
so a PCA variant is evaluated, exported and split like a butterfly variant (cut layer
:data:`PCA_REDUCE_LAYER`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.butterfly import dequantize_features, quantize_features
from models.errors import UsageError

if TYPE_CHECKING:
    import keras

__all__ = ["PCA_REDUCE_LAYER", "FeaturePCA", "cut_features", "fit_cut_pca", "insert_pca"]

PCA_REDUCE_LAYER = "pca_reduce"  # the quantizer whose output crosses the network


@dataclass
class FeaturePCA:
    """Channel PCA: ``mean`` (C,), ``components`` (k, C) orthonormal rows, coefficient range (low, high)."""

    mean: np.ndarray
    components: np.ndarray
    low: float
    high: float
    explained_variance_ratio: float  # of the k components, over the total channel variance

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, features: np.ndarray, k: int) -> FeaturePCA:
        """Fit on features ``(N, H, W, C)`` (or ``(M, C)``): top-``k`` eigenvectors of the covariance."""
        vectors = features.reshape(-1, features.shape[-1]).astype(np.float64)  # (N*H*W, C)
        channels = vectors.shape[1]
        if not 1 <= k <= channels:
            raise UsageError(f"PCA needs 1 <= k <= {channels} components for {channels} channels, got {k}")
        mean = vectors.mean(axis=0)
        centered = vectors - mean
        cov = centered.T @ centered / max(len(vectors) - 1, 1)  # (C, C)
        eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
        order = np.argsort(eigvals)[::-1][:k]
        components = eigvecs[:, order].T  # (k, C)
        coeffs = centered @ components.T  # (N*H*W, k)
        total = float(np.clip(eigvals, 0, None).sum()) or 1.0
        low, high = float(coeffs.min()), float(coeffs.max())
        if high <= low:
            high = low + 1e-6
        return cls(
            mean=mean.astype(np.float32),
            components=components.astype(np.float32),
            low=low,
            high=high,
            explained_variance_ratio=float(np.clip(eigvals[order], 0, None).sum()) / total,
        )

    def project(self, features: np.ndarray) -> np.ndarray:
        """``(..., C)`` -> coefficients ``(..., k)`` (float, unquantized)."""
        return ((features - self.mean) @ self.components.T).astype(np.float32)

    def reconstruct(self, coeffs: np.ndarray) -> np.ndarray:
        """Coefficients ``(..., k)`` -> features ``(..., C)``."""
        return (coeffs @ self.components + self.mean).astype(np.float32)

    def encode(self, features: np.ndarray) -> np.ndarray:
        """What the device sends: uint8 codes ``(..., k)`` of the coefficients."""
        return quantize_features(self.project(features), self.low, self.high)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """What the cloud computes from the codes: reconstructed features ``(..., C)``."""
        return self.reconstruct(dequantize_features(codes, self.low, self.high))

    def roundtrip(self, features: np.ndarray, *, quantize: bool = True) -> np.ndarray:
        """Features after projection, (8-bit quantization) and reconstruction."""
        if quantize:
            return self.decode(self.encode(features))
        return self.reconstruct(self.project(features))

    def relative_error(self, features: np.ndarray, *, quantize: bool = True) -> float:
        """Squared reconstruction error over the features' total variance (0 = perfect)."""
        x = features.astype(np.float64)
        err = float(np.sum((x - self.roundtrip(features, quantize=quantize)) ** 2))
        var = float(np.sum((x - x.reshape(-1, x.shape[-1]).mean(axis=0)) ** 2)) or 1.0
        return err / var


def cut_features(model: keras.Model, cut_layer: str, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The output of ``cut_layer`` for inputs ``x`` (inference mode), float32 ``(N, H, W, C)``."""
    import keras

    head = keras.Model(model.inputs, model.get_layer(cut_layer).output)
    return np.asarray(head.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def fit_cut_pca(model: keras.Model, cut_layer: str, calibration: np.ndarray, k: int) -> FeaturePCA:
    """Fit a :class:`FeaturePCA` with ``k`` components on ``cut_layer``'s features of ``calibration``."""
    features = cut_features(model, cut_layer, calibration)
    if features.ndim != 4:
        raise UsageError(
            f"layer {cut_layer!r} outputs {features.shape[1:]}; PCA needs a (H, W, C) feature map"
        )
    return FeaturePCA.fit(features, k)


def insert_pca(
    model: keras.Model, cut_layer: str, pca: FeaturePCA, *, name_suffix: str | None = None
) -> keras.Model:
    """A copy of ``model`` with the PCA bottleneck (fixed weights) after ``cut_layer``.

    Layers: ``pca_project`` (1x1 conv, kernel = components^T, bias = -mean @ components^T),
    ``pca_reduce`` (8-bit quantizer over the calibration range; the new cut), ``pca_restore_conv``
    (1x1 conv, kernel = components, bias = mean) and the base model's activation at the cut.
    The copy is named ``<model>_<name_suffix>`` (default ``pca<k>``).
    """
    from keras import layers

    from models.butterfly import (
        RESTORE_LAYER,
        FeatureQuantizer,
        _activation_layer,
        cut_activation,
        insert_bottleneck,
    )

    channels = int(pca.components.shape[1])
    restore_act = cut_activation(model, cut_layer)
    project_kernel = pca.components.T[None, None]  # (1, 1, C, k)
    restore_kernel = pca.components[None, None]  # (1, 1, k, C)

    def build(x: Any) -> Any:
        y = layers.Conv2D(pca.k, 1, name="pca_project", trainable=False)(x)  # (N, H, W, k)
        y = FeatureQuantizer(pca.low, pca.high, name=PCA_REDUCE_LAYER)(y)
        y = layers.Conv2D(channels, 1, name="pca_restore_conv", trainable=False)(y)  # (N, H, W, C)
        return _activation_layer(restore_act, RESTORE_LAYER.replace("butterfly", "pca"))(y)

    clone = insert_bottleneck(model, cut_layer, build, name_suffix=name_suffix or f"pca{pca.k}")
    # The fixed PCA weights (the base layers got theirs from the base model).
    clone.get_layer("pca_project").set_weights([project_kernel, -(pca.mean @ pca.components.T)])
    clone.get_layer("pca_restore_conv").set_weights([restore_kernel, pca.mean])
    return clone
