"""SmartDeal: every weight tensor as sparse power-of-two coefficients ``C`` times a small dense basis ``B``.

After "SmartDeal: Re-Modeling Deep Network Weights for Efficient Inference and Training" (Chen et al.,
TNNLS 2022; code ``VITA-Group/SmartDeal``). A layer's kernel is viewed as a matrix ``M`` of shape
``(out, F)``: one row of ``F`` fan-in weights per output channel, ordered ``(in, kh, kw)`` for Conv2D
(so with ``b = kw`` a basis vector is a kernel row, as in the authors' ``SEConv2d``), ``(kh, kw)`` for
DepthwiseConv2D (output channel ``c * multiplier + m``) and ``(in,)`` for Dense. Each row is cut into
vectors of ``b`` weights (``b`` = the basis size, which must divide ``F``); ``S`` consecutive vectors of
one output channel share one basis, so the layer holds

    C: (G, S, b)   coefficients, G = out * F / (b * S); nonzeros are ±2^e, e in [exp_min, exp_max]
    B: (G, b, b)   dense bases, stored as float16
    W[g] = C[g] @ B[g]   (S, b) -> back to the kernel layout

``C`` is thresholded (``|c| < threshold`` -> 0), then a fixed mask keeps the surviving positions; the
nonzeros are rounded to the nearest power of two (ties up, as the authors' ``SparsifyAndNearestPow2``)
with the exponent clamped to the configured range. Training passes gradients straight through the
rounding (STE); masked positions get none. A sign bit + ``ceil(log2(levels))`` exponent bits code a
nonzero (4 bits for the default 8 exponents).

**Reconstruction is one fixed float32 sum** (:func:`reconstruct`): ``W = sum_k C[..., k] * B[k, :]`` in
order ``k = 0..b-1``. Each product is exact (a power of two times a float16 value), each sum is one IEEE
rounding, so numpy, the Keras fold and the device program rebuild identical bits.

**Folding** (:func:`fold_smartdeal`) turns a trained SD model into ordinary Keras layers with the
reconstructed kernels; a BatchNormalization right after an SD layer is folded into its bases
(``B' = fp16(B * gamma / sqrt(var + eps))`` per output channel) and bias, so the TFLite converter copies the
kernel into the ``.tflite`` unchanged and the device can rebuild the segment file bit for bit
(:mod:`models.smartdeal_artifact`). This module imports no TensorFlow at module level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from models.errors import InvalidCutError, UsageError

if TYPE_CHECKING:
    import keras

__all__ = [
    "SUPPORTED_LAYERS",
    "LayerShape",
    "SmartDealConfig",
    "decompose",
    "fix_masks",
    "fold_smartdeal",
    "from_matrix",
    "layer_shape",
    "pow2_round",
    "reconstruct",
    "sd_scope",
    "smartdeal_layers",
    "to_matrix",
    "to_smartdeal",
]

SUPPORTED_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")  # BatchNormalization after them is folded
Kind = Literal["conv2d", "depthwise", "dense"]
_KINDS: dict[str, Kind] = {"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise", "Dense": "dense"}
_SHAPE_ONLY = {  # weightless layers an SD scope may contain
    "InputLayer",
    "ReLU",
    "Activation",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "Dropout",
    "ZeroPadding2D",
    "Add",
    "Concatenate",
    "Multiply",
    "Softmax",
    "Rescaling",
    "Identity",
}


@dataclass(frozen=True)
class SmartDealConfig:
    """How to decompose: basis size ``b`` (None: ``kw`` for k x k convs, else the first of 4, 3, 2, 1
    dividing the fan-in), at most ``max_rows`` coefficient rows per basis (the authors' 64 input channels
    x 3 kernel rows), the magnitude ``threshold`` below which a coefficient is pruned (coefficients live
    in [-2^exp_max, 2^exp_max]), and the exponent range of the nonzeros."""

    basis: int | None = None
    max_rows: int = 192
    threshold: float = 0.15
    exp_min: int = -7
    exp_max: int = 0

    def __post_init__(self) -> None:
        if self.basis is not None and self.basis < 1:
            raise UsageError(f"--basis must be a positive integer, got {self.basis}")
        if self.max_rows < 1:
            raise UsageError(f"rows per basis must be >= 1, got {self.max_rows}")
        if self.exp_max < self.exp_min:
            raise UsageError(f"exponent range [{self.exp_min}, {self.exp_max}] is empty")
        if self.levels > 128:
            raise UsageError(
                f"exponent range [{self.exp_min}, {self.exp_max}] needs > 8-bit codes; use <= 128"
            )
        top = 2.0**self.exp_max
        if not 0.0 <= self.threshold < top:
            raise UsageError(
                f"--threshold must be in [0, {top:g}) (coefficients are at most 2^{self.exp_max}), "
                f"got {self.threshold}"
            )

    @property
    def levels(self) -> int:  # distinct exponents of a nonzero
        return self.exp_max - self.exp_min + 1

    @property
    def code_bits(self) -> int:  # sign bit + exponent bits of one nonzero
        return 1 + max(1, math.ceil(math.log2(self.levels)))


@dataclass(frozen=True)
class LayerShape:
    """How one layer's kernel maps onto ``C (G, S, b)`` and ``B (G, b, b)``."""

    kind: Kind
    kernel_shape: tuple[int, ...]  # Keras layout
    out: int  # output channels (rows of M)
    fan_in: int  # F: weights per output channel
    basis: int  # b
    rows: int  # S: coefficient rows per basis

    @property
    def groups(self) -> int:  # G: bases in the layer
        return self.out * self.fan_in // (self.basis * self.rows)

    @property
    def weights(self) -> int:
        return self.out * self.fan_in


def _rows_per_basis(vectors: int, max_rows: int) -> int:
    """The largest divisor of ``vectors`` (b-vectors per output channel) that is <= ``max_rows``."""
    return max(d for d in range(1, min(vectors, max_rows) + 1) if vectors % d == 0)


def layer_shape(layer: Any, config: SmartDealConfig) -> LayerShape:
    """The decomposition shape of a Conv2D / DepthwiseConv2D / Dense layer (raises UsageError otherwise)."""
    kind_name = type(layer).__name__
    if kind_name not in _KINDS:
        raise UsageError(
            f"layer {layer.name!r} is a {kind_name}, which SmartDeal cannot decompose; "
            f"supported: {', '.join(SUPPORTED_LAYERS)} (BatchNormalization after them is folded)"
        )
    kind = _KINDS[kind_name]
    kernel = tuple(int(d) for d in layer.kernel.shape)
    if kind == "conv2d":
        if getattr(layer, "groups", 1) != 1:
            raise UsageError(f"layer {layer.name!r}: grouped Conv2D (groups={layer.groups}) is not supported")
        kh, kw, cin, out = kernel
        fan_in, natural = kh * kw * cin, kw
    elif kind == "depthwise":
        kh, kw, cin, mult = kernel
        out, fan_in, natural = cin * mult, kh * kw, kw
    else:
        fan_in, out = kernel
        natural = 1
    if config.basis is not None:
        b = config.basis
        if fan_in % b:
            raise UsageError(
                f"basis size {b} does not divide the fan-in {fan_in} of layer {layer.name!r} "
                f"(kernel {kernel}); choose a divisor, or omit --basis for a per-layer choice"
            )
    elif natural > 1 and fan_in % natural == 0:
        b = natural
    else:
        b = next(d for d in (4, 3, 2, 1) if fan_in % d == 0)
    return LayerShape(kind, kernel, out, fan_in, b, _rows_per_basis(fan_in // b, config.max_rows))


# --------------------------------------------------------------------------------------------------
# numpy math: layouts, rounding, reconstruction (shared by the fold, the artifact and the device)


def to_matrix(kernel: np.ndarray, shape: LayerShape) -> np.ndarray:
    """Keras kernel -> ``(G, S, b)`` vectors (the layout C @ B produces)."""
    if shape.kind == "conv2d":
        m = np.transpose(kernel, (3, 2, 0, 1))  # (out, in, kh, kw)
    elif shape.kind == "depthwise":
        m = np.transpose(kernel, (2, 3, 0, 1))  # (in, mult, kh, kw): output channel c * mult + m
    else:
        m = kernel.T  # (out, in)
    return np.ascontiguousarray(m).reshape(shape.groups, shape.rows, shape.basis)


def from_matrix(w: np.ndarray, shape: LayerShape) -> np.ndarray:
    """``(G, S, b)`` vectors -> the Keras kernel (inverse of :func:`to_matrix`)."""
    k = shape.kernel_shape
    if shape.kind == "conv2d":
        kh, kw, cin, out = k
        return np.ascontiguousarray(np.transpose(w.reshape(out, cin, kh, kw), (2, 3, 1, 0)))
    if shape.kind == "depthwise":
        kh, kw, cin, mult = k
        return np.ascontiguousarray(np.transpose(w.reshape(cin, mult, kh, kw), (2, 3, 0, 1)))
    return np.ascontiguousarray(w.reshape(k[1], k[0]).T)


def pow2_round(c: np.ndarray, threshold: float, exp_min: int, exp_max: int) -> np.ndarray:
    """Prune ``|c| < threshold`` to 0; round the rest to the nearest ``±2^e`` (ties up), e clamped.

    float32 in, float32 out; every nonzero output is an exact power of two.
    """
    c = np.asarray(c, dtype=np.float32)
    a = np.abs(c)
    keep = (a >= np.float32(threshold)) & (a > 0)
    safe = np.where(keep, a, np.float32(1.0))
    nxt = np.exp2(np.ceil(np.log2(safe))).astype(np.float32)
    prv = nxt * np.float32(0.5)
    q = np.where(safe - prv < nxt - safe, prv, nxt)
    q = np.clip(q, np.float32(2.0**exp_min), np.float32(2.0**exp_max))
    return np.where(keep, np.sign(c) * q, np.float32(0.0)).astype(np.float32)


def reconstruct(c: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``W = C @ B`` as the fixed float32 sum ``sum_k C[..., k, None] * B[:, k, None, :]`` (k ascending).

    ``c`` (G, S, b) power-of-two coefficients, ``b`` (G, b, b) basis values (float16-representable);
    returns float32 (G, S, b). The order of the sum is the contract that makes every rebuild bit-exact.
    """
    c = np.asarray(c, dtype=np.float32)
    basis = np.asarray(b, dtype=np.float32)
    w: np.ndarray = c[:, :, 0:1] * basis[:, None, 0, :]
    for k in range(1, c.shape[-1]):
        w = w + c[:, :, k : k + 1] * basis[:, None, k, :]  # float32 + float32: one rounding per step
    return w.astype(np.float32)


def decompose(
    w: np.ndarray, config: SmartDealConfig, *, iterations: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``W (G, S, b) ~ pow2(C) @ B`` without training: SVD start, then alternate C and B.

    Returns float32 ``(C, B, mask)``: ``C`` already on the power-of-two grid, ``B`` float16-representable,
    ``mask`` the surviving positions. Each group's coefficients are scaled so its largest is about 1
    (the scale moves into ``B``), so ``threshold`` acts relative to the group's largest coefficient.
    """
    w = np.asarray(w, dtype=np.float64)
    groups, _, b = w.shape
    _, sing, vt = np.linalg.svd(w, full_matrices=False)  # sing (G, r), vt (G, r, b), r = min(S, b)
    basis = np.zeros((groups, b, b))
    r = sing.shape[1]
    basis[:, :r, :] = sing[:, :, None] * vt
    ridge = 1e-9 * np.eye(b)
    c_q: np.ndarray = np.zeros_like(w)
    for _ in range(iterations):
        gram = basis @ np.swapaxes(basis, 1, 2) + ridge  # (G, b, b)
        c = np.swapaxes(np.linalg.solve(gram, basis @ np.swapaxes(w, 1, 2)), 1, 2)  # (G, S, b)
        top = np.max(np.abs(c), axis=(1, 2), keepdims=True)
        scale = np.exp2(np.ceil(np.log2(np.where(top > 0, top, 1.0))))  # power of two >= max |c|
        scale *= 2.0**config.exp_max
        c_q = pow2_round(c / scale, config.threshold, config.exp_min, config.exp_max).astype(np.float64)
        basis = basis * np.swapaxes(scale, 1, 2)  # exact: scale is a power of two
        gram_c = np.swapaxes(c_q, 1, 2) @ c_q + ridge  # (G, b, b)
        basis = np.linalg.solve(gram_c, np.swapaxes(c_q, 1, 2) @ w)
    basis16 = basis.astype(np.float16).astype(np.float32)
    return c_q.astype(np.float32), basis16, (c_q != 0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Keras transform and fold


def sd_scope(model: keras.Model, cut: str | None) -> list[str]:
    """Names of the layers up to and including ``cut`` (all layers when ``cut`` is None).

    ``cut`` must be a cut point (raises InvalidCutError naming the nearest ones). Functional models list
    layers in topological order and a cut point dominates the output, so "before it in ``model.layers``"
    is exactly the mobile half.
    """
    names = [layer.name for layer in model.layers]
    if cut is None:
        return names
    if cut not in names:
        raise InvalidCutError(f"model {model.name!r} has no layer {cut!r}")
    from models.graph import analyze

    graph = analyze(model)
    if cut not in graph.cut_layers:
        graph.check_cut(cut)
    return names[: names.index(cut) + 1]


def _check_scope(model: keras.Model, scope: list[str]) -> None:
    supported = {*SUPPORTED_LAYERS, "BatchNormalization", *_SHAPE_ONLY}
    for name in scope:
        layer = model.get_layer(name)
        kind = type(layer).__name__
        if kind not in supported and layer.weights:
            raise UsageError(
                f"layer {name!r} is a {kind}, which SmartDeal cannot decompose; "
                f"supported: {', '.join(SUPPORTED_LAYERS)} (BatchNormalization after them is folded)"
            )


def to_smartdeal(
    model: keras.Model,
    config: SmartDealConfig = SmartDealConfig(),
    *,
    cut: str | None = None,
    init: Literal["decompose", "random"] = "decompose",
    seed: int = 0,
) -> keras.Model:
    """A copy of ``model`` whose Conv2D / DepthwiseConv2D / Dense layers up to ``cut`` are SmartDeal layers.

    ``init="decompose"`` fits C and B to the model's current kernels (:func:`decompose`) and fixes the mask;
    ``init="random"`` starts from random C, B with an all-ones mask (call :func:`fix_masks` after a
    warm-up). Other layers keep their weights. Layer names are unchanged.
    """
    import keras

    from models.smartdeal_layer import SmartDealLayer

    scope = set(sd_scope(model, cut))
    _check_scope(model, [layer.name for layer in model.layers if layer.name in scope])
    shapes = {
        layer.name: layer_shape(layer, config)
        for layer in model.layers
        if layer.name in scope and type(layer).__name__ in _KINDS
    }
    if not shapes:
        raise UsageError(f"no Conv2D / DepthwiseConv2D / Dense layer up to {cut!r} to decompose")
    keras.utils.set_random_seed(seed)

    def call_function(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name not in shapes:
            return layer(*args, **kwargs)
        sd = SmartDealLayer.from_layer(layer, shapes[layer.name], config)
        return sd(*args, **kwargs)

    clone = keras.models.clone_model(model, call_function=call_function)
    new = keras.Model(clone.inputs, clone.outputs, name=f"{model.name}_sd")
    for layer in model.layers:
        if layer.name in shapes:
            target = new.get_layer(layer.name)
            shape = shapes[layer.name]
            bias = layer.bias.numpy() if getattr(layer, "use_bias", False) else None
            if init == "decompose":
                c, b, mask = decompose(to_matrix(layer.kernel.numpy(), shape), config)
            else:
                c, b, mask = _random_init(shape, seed)
            target.set_sd_weights(c, b, mask, bias)
        elif layer.weights:
            new.get_layer(layer.name).set_weights(layer.get_weights())
    return new


def _random_init(shape: LayerShape, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """C ~ U(-1, 1), B scaled so that W has He variance 2 / fan_in; mask all ones."""
    rng = np.random.default_rng(seed)
    g, s, b = shape.groups, shape.rows, shape.basis
    c = rng.uniform(-1.0, 1.0, (g, s, b)).astype(np.float32)
    std_b = math.sqrt(2.0 / shape.fan_in / (b / 3.0))  # Var(W) = b * Var(C) * Var(B), Var(C) = 1/3
    basis = rng.normal(0.0, std_b, (g, b, b)).astype(np.float32)
    return c, basis, np.ones_like(c)


def smartdeal_layers(model: keras.Model) -> list[Any]:
    """The SmartDeal layers of ``model``, in order."""
    return [layer for layer in model.layers if type(layer).__name__ == "SmartDealLayer"]


def fix_masks(model: keras.Model) -> float:
    """Threshold every SD layer's coefficients and freeze the mask (the paper's "set_mask"); returns density.

    Each group's coefficients are first rescaled by a power of two so the largest is about 2^exp_max (the
    inverse scale moves into ``B``, exactly), then ``|c| < threshold`` is masked out for good.
    """
    kept = total = 0
    for layer in smartdeal_layers(model):
        kept_l, total_l = layer.fix_mask()
        kept += kept_l
        total += total_l
    return kept / max(1, total)


def _following_bn(model: keras.Model, name: str) -> Any:
    """The BatchNormalization that alone consumes ``name``'s output, or None."""
    consumers = [
        node.operation
        for layer in model.layers
        for node in layer._inbound_nodes
        if any(p.operation.name == name for p in node.parent_nodes)
    ]
    if len(consumers) == 1 and type(consumers[0]).__name__ == "BatchNormalization":
        return consumers[0]
    return None


def folded_parts(layer: Any, bn: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(C, B, bias)`` of a trained SD layer with ``bn`` (or None) folded in: what the device stores.

    ``C`` on the power-of-two grid (masked), ``B`` float16-representable float32, ``bias`` float32 or None.
    """
    c = layer.quantized_c()
    basis = layer.basis16()
    bias = layer.bias.numpy().astype(np.float32) if layer.bias is not None else None
    if bn is None:
        return c, basis, bias
    gamma = bn.gamma.numpy() if bn.gamma is not None else np.ones(bn.moving_variance.shape, np.float32)
    beta = bn.beta.numpy() if bn.beta is not None else np.zeros(bn.moving_mean.shape, np.float32)
    scale = (gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)).astype(np.float32)  # (out,)
    per_group = np.repeat(scale, layer.shape.groups // layer.shape.out)  # (G,): groups are output-major
    basis = (basis * per_group[:, None, None]).astype(np.float16).astype(np.float32)
    shift = beta - bn.moving_mean.numpy() * scale
    bias = (shift if bias is None else bias * scale + shift).astype(np.float32)
    return c, basis, bias


def fold_smartdeal(model: keras.Model) -> keras.Model:
    """An ordinary Keras model computing the SD model: kernels rebuilt by :func:`reconstruct`.

    Each SD layer becomes the original layer type (same name) with a bias; a BatchNormalization that
    alone follows it is folded in and becomes an Identity of the same name (so cut names survive). Graph analysis, export, profiling, the server and the
    runner handle the result unchanged.
    """
    import keras

    sd = {layer.name: layer for layer in smartdeal_layers(model)}
    if not sd:
        raise UsageError(f"model {model.name!r} has no SmartDeal layers to fold")
    bns = {name: _following_bn(model, name) for name in sd}
    folded_bn = {bn.name: name for name, bn in bns.items() if bn is not None}
    parts = {name: folded_parts(layer, bns[name]) for name, layer in sd.items()}

    def call_function(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name in folded_bn:  # keep the name (it may be a cut point); TFLite drops the identity
            return keras.layers.Identity(name=layer.name)(args[0])
        if layer.name in sd:
            return sd[layer.name].dense_layer()(*args, **kwargs)
        return layer(*args, **kwargs)

    clone = keras.models.clone_model(model, call_function=call_function)
    name = model.name[:-3] if model.name.endswith("_sd") else model.name
    new = keras.Model(clone.inputs, clone.outputs, name=f"{name}_sdfolded")
    for layer in model.layers:
        if layer.name in folded_bn:
            continue
        if layer.name in sd:
            target = new.get_layer(layer.name)
            c, basis, bias = parts[layer.name]
            shape = sd[layer.name].shape
            kernel = from_matrix(reconstruct(c, basis), shape)
            if bias is None:
                bias = np.zeros(shape.out, np.float32)
            target.set_weights([kernel, bias])
        elif layer.weights:
            new.get_layer(layer.name).set_weights(layer.get_weights())
    return new


def artifact_layers(model: keras.Model) -> list[Any]:
    """Every SD layer's exact folded parts (:class:`models.smartdeal_artifact.ArtifactLayer`), in order."""
    from models.smartdeal_artifact import ArtifactLayer

    result = []
    for layer in smartdeal_layers(model):
        c, basis, _ = folded_parts(layer, _following_bn(model, layer.name))
        result.append(ArtifactLayer(layer.name, layer.shape, c, basis))
    return result


def config_of(model: keras.Model) -> SmartDealConfig:
    """The decomposition settings of an SD model (from its first SD layer)."""
    layers = smartdeal_layers(model)
    if not layers:
        raise UsageError(f"model {model.name!r} has no SmartDeal layers; build one with `jointdnn smartdeal`")
    first = layers[0]
    return SmartDealConfig(threshold=first.threshold, exp_min=first.exp_min, exp_max=first.exp_max)
