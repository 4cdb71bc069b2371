"""The SmartDeal Keras layer: a Conv2D / DepthwiseConv2D / Dense whose kernel is ``pow2(C) * mask @ B``.

Weights: ``C`` (G, S, b) and ``B`` (G, b, b) trainable, ``mask`` (G, S, b) not trainable, an optional
bias (out,). The forward pass rounds ``C`` to signed powers of two (:func:`models.smartdeal.pow2_round`,
here in Keras ops) and ``B`` to float16, both with straight-through gradients, multiplies by the mask
(so pruned coefficients get no gradient), rebuilds the kernel and applies the original operation with the
original strides, padding, dilation and activation. This module imports Keras at module level: import it
only where a model is built or loaded.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from models.smartdeal import LayerShape, SmartDealConfig, from_matrix, pow2_round

__all__ = ["SmartDealLayer", "ste_pow2"]


def ste_pow2(c: Any, threshold: float, exp_min: int, exp_max: int) -> Any:
    """Keras-ops :func:`models.smartdeal.pow2_round` with a straight-through gradient (d out / d c = 1)."""
    a = ops.abs(c)
    keep = ops.cast(ops.greater_equal(a, threshold), c.dtype) * ops.cast(ops.greater(a, 0.0), c.dtype)
    safe = ops.where(keep > 0, a, ops.ones_like(a))
    nxt = ops.power(2.0, ops.ceil(ops.log2(safe)))
    prv = nxt * 0.5
    q = ops.where(ops.less(safe - prv, nxt - safe), prv, nxt)
    q = ops.clip(q, 2.0**exp_min, 2.0**exp_max)
    rounded = ops.sign(c) * q * keep
    return c + ops.stop_gradient(rounded - c)


def _ste_fp16(x: Any) -> Any:
    return x + ops.stop_gradient(ops.cast(ops.cast(x, "float16"), x.dtype) - x)


@keras.saving.register_keras_serializable(package="jointdnn")
class SmartDealLayer(keras.layers.Layer):
    """One decomposed layer; ``spec`` is the original layer's config, ``kind`` its type."""

    def __init__(
        self,
        kind: str,
        spec: dict[str, Any],
        kernel_shape: tuple[int, ...],
        basis: int,
        rows: int,
        threshold: float,
        exp_min: int,
        exp_max: int,
        use_bias: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.kind = kind
        # Lists come back as Keras tracked lists after loading; the ops want tuples (strides, dilation).
        self.spec = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in dict(spec).items()}
        kernel_shape = tuple(int(d) for d in kernel_shape)
        if kind == "conv2d":
            out, fan_in = kernel_shape[3], kernel_shape[0] * kernel_shape[1] * kernel_shape[2]
        elif kind == "depthwise":
            out, fan_in = kernel_shape[2] * kernel_shape[3], kernel_shape[0] * kernel_shape[1]
        else:
            out, fan_in = kernel_shape[1], kernel_shape[0]
        self.shape = LayerShape(kind, kernel_shape, out, fan_in, int(basis), int(rows))  # type: ignore[arg-type]
        self.threshold = float(threshold)
        self.exp_min = int(exp_min)
        self.exp_max = int(exp_max)
        self.use_bias = bool(use_bias)
        self.activation = keras.activations.get(self.spec.get("activation", "linear"))
        s = self.shape
        self.c = self.add_weight(name="c", shape=(s.groups, s.rows, s.basis), initializer="zeros")
        self.b = self.add_weight(name="b", shape=(s.groups, s.basis, s.basis), initializer="zeros")
        self.mask = self.add_weight(
            name="mask", shape=(s.groups, s.rows, s.basis), initializer="ones", trainable=False
        )
        self.bias = self.add_weight(name="bias", shape=(s.out,), initializer="zeros") if use_bias else None

    @classmethod
    def from_layer(cls, layer: Any, shape: LayerShape, config: SmartDealConfig) -> SmartDealLayer:
        spec = layer.get_config()
        return cls(
            kind=shape.kind,
            spec=spec,
            kernel_shape=shape.kernel_shape,
            basis=shape.basis,
            rows=shape.rows,
            threshold=config.threshold,
            exp_min=config.exp_min,
            exp_max=config.exp_max,
            use_bias=bool(spec.get("use_bias", False)),
            name=layer.name,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            kind=self.kind,
            spec=self.spec,
            kernel_shape=list(self.shape.kernel_shape),
            basis=self.shape.basis,
            rows=self.shape.rows,
            threshold=self.threshold,
            exp_min=self.exp_min,
            exp_max=self.exp_max,
            use_bias=self.use_bias,
        )
        return config

    # --- weights -------------------------------------------------------------------------------------
    def set_sd_weights(self, c: np.ndarray, b: np.ndarray, mask: np.ndarray, bias: np.ndarray | None) -> None:
        self.c.assign(c.astype(np.float32))
        self.b.assign(b.astype(np.float32))
        self.mask.assign(mask.astype(np.float32))
        if self.bias is not None:
            self.bias.assign(np.zeros(self.shape.out, np.float32) if bias is None else bias)

    def quantized_c(self) -> np.ndarray:
        """Masked power-of-two coefficients (numpy, the fold's and the artifact's exact values)."""
        q = pow2_round(self.c.numpy(), self.threshold, self.exp_min, self.exp_max)
        return (q * self.mask.numpy()).astype(np.float32)

    def basis16(self) -> np.ndarray:
        return self.b.numpy().astype(np.float16).astype(np.float32)

    def fix_mask(self) -> tuple[int, int]:
        """Rescale groups so max |C| ~ 2^exp_max (power-of-two factor into B), then freeze the mask."""
        c = self.c.numpy().astype(np.float64)
        top = np.max(np.abs(c), axis=(1, 2), keepdims=True)
        scale = np.exp2(np.ceil(np.log2(np.where(top > 0, top, 1.0)))) * 2.0**self.exp_max  # (G, 1, 1)
        c = c / scale
        self.c.assign(c.astype(np.float32))
        self.b.assign((self.b.numpy() * np.swapaxes(scale, 1, 2)).astype(np.float32))
        mask = self.mask.numpy() * (np.abs(c) >= self.threshold)
        self.mask.assign(mask.astype(np.float32))
        return int(mask.sum()), int(mask.size)

    def density(self) -> float:
        return float(np.count_nonzero(self.quantized_c())) / self.quantized_c().size

    # --- forward -------------------------------------------------------------------------------------
    def _kernel(self) -> Any:
        c = ste_pow2(self.c, self.threshold, self.exp_min, self.exp_max) * self.mask  # (G, S, b)
        w = ops.matmul(c, _ste_fp16(self.b))  # (G, S, b)
        s = self.shape
        kh_kw = s.kernel_shape
        if s.kind == "conv2d":
            kh, kw, cin, out = kh_kw
            return ops.transpose(ops.reshape(w, (out, cin, kh, kw)), (2, 3, 1, 0))
        if s.kind == "depthwise":
            kh, kw, cin, mult = kh_kw
            return ops.transpose(ops.reshape(w, (cin, mult, kh, kw)), (2, 3, 0, 1))
        return ops.transpose(ops.reshape(w, (kh_kw[1], kh_kw[0])))

    def call(self, inputs: Any) -> Any:
        kernel = self._kernel()
        spec = self.spec
        if self.kind == "dense":
            y = ops.matmul(inputs, kernel)
        elif self.kind == "conv2d":
            y = ops.conv(
                inputs,
                kernel,
                strides=spec["strides"],
                padding=spec["padding"],
                data_format=spec.get("data_format") or "channels_last",
                dilation_rate=spec.get("dilation_rate", 1),
            )
        else:
            y = ops.depthwise_conv(
                inputs,
                kernel,
                strides=spec["strides"],
                padding=spec["padding"],
                data_format=spec.get("data_format") or "channels_last",
                dilation_rate=spec.get("dilation_rate", 1),
            )
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

    def dense_layer(self) -> keras.layers.Layer:
        """A new ordinary layer of the original type and config (same name), with a bias."""
        cls = {
            "conv2d": keras.layers.Conv2D,
            "depthwise": keras.layers.DepthwiseConv2D,
            "dense": keras.layers.Dense,
        }
        config = {k: v for k, v in self.spec.items() if k not in ("dtype",)}
        config["use_bias"] = True
        config["name"] = self.name
        return cls[self.kind].from_config(config)

    def folded_kernel(self) -> np.ndarray:
        """The kernel this layer computes (no BN folded), Keras layout, exact reconstruction."""
        from models.smartdeal import reconstruct

        return from_matrix(reconstruct(self.quantized_c(), self.basis16()), self.shape)
