"""One streaming-PCA update step as a TFLite model, so the phone trains its own reduction.

The step is the float GHA update of :class:`models.streaming_pca.StreamingPCA` (same formula, same
power-of-two rates), written with builtin TFLite ops only (strided slice, mean, sub, mul, batch
matmul, concatenation), so a stock ``benchmark_model`` or our chain runner can run it. It has one input
and one output, which is what the chain runner and ``benchmark_model``'s input/output files take::

    input  (1, 1 + k + B, C + 1) float32   row 0: running mean, rows 1..k: weights, rows k+1..: features
                                           column C: the rates (row 0: the mean's, row i: ηᵢ/B; 0 below)
    output (1, 1 + k, C)         float32   the new mean and weights

So the state (mean and weights, (1 + k)·C words) goes in and comes out; the feature batch never leaves
the device, and only the learnt ``k×C`` weights (and the mean) are sent to configure the cloud's
restoration. The rates travel in the input so one exported model serves any schedule.
:func:`export_update_step` writes it as a one-segment bundle (what ``Device.run_chain`` pushes and runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import UsageError

if TYPE_CHECKING:
    import keras

    from models.streaming_pca import FixedPointStreamingPCA, StreamingPCA

__all__ = [
    "build_fixed_point_step",
    "build_update_step",
    "export_update_step",
    "pack_fixed_point_input",
    "pack_update_input",
    "step_input",
    "update_rates",
]

Q_WEIGHT = 14  # as models.streaming_pca: int16 weights in Q1.14
MEAN_FRACTION = 16  # as models.streaming_pca: extra fractional bits of the running mean


def build_update_step(k: int, channels: int, batch_size: int) -> keras.Model:
    """The Keras model of one update: ``(1, 1+k+B, C+1)`` -> ``(1, 1+k, C)`` (see the module doc)."""
    from models.tf_import import ensure_tensorflow

    ensure_tensorflow()
    import keras
    from keras import layers, ops

    if not 1 <= k <= channels:
        raise UsageError(f"the update step needs 1 <= k <= {channels} for {channels} channels, got k={k}")
    if batch_size < 1:
        raise UsageError(f"the update step needs a positive batch size, got {batch_size}")
    mask = np.tril(np.ones((k, k), np.float32))  # LT(.) incl. the diagonal

    class GHAStep(layers.Layer):  # type: ignore[misc]
        def call(self, packed: Any) -> Any:
            mean = packed[:, 0:1, :channels]  # (1, 1, C)
            weights = packed[:, 1 : 1 + k, :channels]  # (1, k, C)
            batch = packed[:, 1 + k :, :channels]  # (1, B, C)
            mean_rate = packed[:, 0:1, channels:]  # (1, 1, 1)
            row_rates = packed[:, 1 : 1 + k, channels:]  # (1, k, 1): ηᵢ / B
            mean = mean + mean_rate * (ops.mean(batch, axis=1, keepdims=True) - mean)
            x = batch - mean  # (1, B, C)
            y = ops.matmul(x, ops.transpose(weights, (0, 2, 1)))  # (1, B, k)
            y_t = ops.transpose(y, (0, 2, 1))  # (1, k, B)
            hebb = ops.matmul(y_t, x)  # (1, k, C)  Σ_b y xᵀ
            decay = ops.matmul(ops.matmul(y_t, y) * mask, weights)  # (1, k, C)  Σ_b LT(y yᵀ) W
            weights = weights + row_rates * (hebb - decay)
            return ops.concatenate([mean, weights], axis=1)  # (1, 1 + k, C)

    packed = keras.Input((1 + k + batch_size, channels + 1), batch_size=1, name="state_and_features")
    return keras.Model(
        packed, GHAStep(name="gha_update")(packed), name=f"gha_update_k{k}_c{channels}_b{batch_size}"
    )


def build_fixed_point_step(k: int, channels: int, batch_size: int) -> keras.Model:
    """The fixed-point update as a Keras model of int32 tensors (builtin TFLite integer ops only).

    Input ``(1, 1+k+B, C+2)`` int32: rows as in the float step (the mean with ``MEAN_FRACTION`` extra
    fractional bits), features already quantized
    (:meth:`FixedPointStreamingPCA.quantize`); column C holds the shifts (row 0: the mean's, row i: the
    update shift of weight row i) and column C+1 their rounding offsets ``2^(shift-1)`` (0 for shift 0),
    because TFLite has a builtin right shift but no left shift. Output ``(1, 1+k, C)`` int32: the new
    mean and weights, bit-identical to :class:`~models.streaming_pca.FixedPointStreamingPCA`.
    Matrix products are broadcast multiplies and sums (TFLite's integer batch matmul is int8/int16 only).
    """
    from models.tf_import import ensure_tensorflow

    ensure_tensorflow()
    import keras
    from keras import layers, ops

    if not 1 <= k <= channels:
        raise UsageError(f"the update step needs 1 <= k <= {channels} for {channels} channels, got k={k}")
    log_b = batch_size.bit_length() - 1
    if batch_size < 1 or 1 << log_b != batch_size or log_b > MEAN_FRACTION:
        raise UsageError(
            f"the fixed-point update step needs a power-of-two batch size up to {2**MEAN_FRACTION}, got {batch_size}"
        )
    half_q = 1 << (Q_WEIGHT - 1)

    def shift(values: Any, amount: Any, half: Any) -> Any:  # round-half-up arithmetic right shift
        return ops.right_shift(values + half, amount)

    class FixedPointGHAStep(layers.Layer):  # type: ignore[misc]
        def call(self, packed: Any) -> Any:
            mean = packed[:, 0:1, :channels]  # (1, 1, C)
            weights = packed[:, 1 : 1 + k, :channels]  # (1, k, C) Q1.14
            batch = packed[:, 1 + k :, :channels]  # (1, B, C)
            mean_shift = packed[:, 0:1, channels : channels + 1]  # (1, 1, 1)
            mean_half = packed[:, 0:1, channels + 1 :]
            row_shift = packed[:, 1 : 1 + k, channels : channels + 1]  # (1, k, 1)
            row_half = packed[:, 1 : 1 + k, channels + 1 :]
            # the mean register has MEAN_FRACTION extra fractional bits; sum / B is exact in it
            batch_mean = ops.sum(batch, axis=1, keepdims=True) * (1 << (MEAN_FRACTION - log_b))
            mean = mean + shift(batch_mean - mean, mean_shift, mean_half)
            x = batch - shift(mean, MEAN_FRACTION, 1 << (MEAN_FRACTION - 1))  # (1, B, C)
            acc = ops.sum(x[:, :, None, :] * weights[:, None, :, :], axis=-1)  # (1, B, k) int32
            y = shift(acc, Q_WEIGHT, half_q)  # (1, B, k)
            scaled = shift(y[:, :, :, None] * weights[:, None, :, :], Q_WEIGHT, half_q)  # (1, B, k, C)
            residual = x[:, :, None, :] - ops.cumsum(scaled, axis=2)  # (1, B, k, C)
            hebb = ops.sum(y[:, :, :, None] * residual, axis=1)  # (1, k, C) int32
            weights = weights + shift(hebb, row_shift, row_half)
            return ops.concatenate([mean, weights], axis=1)  # (1, 1 + k, C)

    packed = keras.Input(
        (1 + k + batch_size, channels + 2), batch_size=1, dtype="int32", name="state_and_features"
    )
    return keras.Model(
        packed,
        FixedPointGHAStep(name="gha_update", dtype="int32")(packed),
        name=f"gha_update_int_k{k}_c{channels}_b{batch_size}",
    )


def pack_fixed_point_input(
    trainer: FixedPointStreamingPCA, state: np.ndarray, batch: np.ndarray
) -> np.ndarray:
    """``state`` (1+k, C) int32, float ``batch`` (B, C) -> the fixed-point step's input for ``trainer``'s next update."""
    batch = np.asarray(batch, np.float64).reshape(-1, state.shape[1])
    trainer.ensure_lr_shift(batch)
    trainer.ensure_feature_shift(batch)
    shifts = trainer.update_shifts(len(batch))  # (k,)
    if int(shifts.min()) < 0:
        raise UsageError(
            "the fixed-point update step needs right shifts; use a smaller rate or more feature_bits"
        )
    mean_shift = 0 if trainer.updates == 0 else trainer.mean_shift()
    packed = np.zeros((1, len(state) + len(batch), state.shape[1] + 2), np.int32)
    packed[0, : len(state), :-2] = state
    packed[0, len(state) :, :-2] = trainer.quantize(batch)
    packed[0, 0, -2:] = [mean_shift, (1 << mean_shift) >> 1]
    packed[0, 1 : len(state), -2] = shifts
    packed[0, 1 : len(state), -1] = (np.int64(1) << shifts) >> 1
    return packed


def update_rates(trainer: StreamingPCA, batch: np.ndarray) -> tuple[float, np.ndarray]:
    """The rates of ``trainer``'s next update on ``batch`` (B, C): (mean rate, ``(k,)`` ηᵢ / B), powers of two."""
    batch_size = len(batch)
    trainer.ensure_lr_shift(batch)
    mean_rate = 1.0 if trainer.updates == 0 else 2.0 ** -trainer.mean_shift()
    return mean_rate, 2.0 ** -trainer.row_lr_shifts().astype(np.float64) / batch_size


def pack_update_input(
    state: np.ndarray, batch: np.ndarray, mean_rate: float, row_rates: np.ndarray
) -> np.ndarray:
    """``state`` (1+k, C) = [mean; W], ``batch`` (B, C), rates -> the step's input ``(1, 1+k+B, C+1)``."""
    state = np.asarray(state, np.float32)
    batch = np.asarray(batch, np.float32).reshape(-1, state.shape[1])
    packed = np.zeros((1, len(state) + len(batch), state.shape[1] + 1), np.float32)
    packed[0, : len(state), :-1] = state
    packed[0, len(state) :, :-1] = batch
    packed[0, 0, -1] = mean_rate
    packed[0, 1 : len(state), -1] = row_rates
    return packed


def step_input(
    trainer: StreamingPCA | FixedPointStreamingPCA, state: np.ndarray, batch: np.ndarray
) -> np.ndarray:
    """The exported step's input for ``trainer``'s next update on ``batch`` (B, C), from device ``state``."""
    from models.streaming_pca import FixedPointStreamingPCA

    if isinstance(trainer, FixedPointStreamingPCA):
        return pack_fixed_point_input(trainer, state, batch)
    return pack_update_input(state, batch, *update_rates(trainer, batch))


def export_update_step(
    k: int, channels: int, batch_size: int, out_dir: Path, *, fixed_point: bool = False
) -> Path:
    """Convert the update step (builtin ops only) and write it as a one-segment bundle in ``out_dir``.

    ``fixed_point`` exports the int32 step of :func:`build_fixed_point_step` instead of the float one.
    """
    from models.bundle import BundleManifest, SegmentEntry, TensorSpec, file_sha256, write_manifest
    from models.export import convert, converter_version

    build = build_fixed_point_step if fixed_point else build_update_step
    model = build(k, channels, batch_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "segment_000.tflite"
    path.write_bytes(convert(model, "fp32"))  # "fp32": no quantization pass (the int step stays int32)
    rows = 1 + k + batch_size
    dtype = "int32" if fixed_point else "float32"
    in_spec = TensorSpec(shape=[1, rows, channels + (2 if fixed_point else 1)], dtype=dtype)
    out_spec = TensorSpec(shape=[1, 1 + k, channels], dtype=dtype)
    macs = batch_size * k * channels * 2 + k * k * batch_size + k * k * channels  # Wx, y xᵀ, y yᵀ, LT·W
    manifest = BundleManifest(
        model=model.name,
        quant="fp32",  # the manifest's "no quantization pass" (the fixed-point step is int32 throughout)
        input=in_spec,
        output=out_spec,
        segments=[
            SegmentEntry(
                index=0,
                file=path.name,
                sha256=file_sha256(path),
                first_layer="state_and_features",
                last_layer="gha_update",
                input=in_spec,
                output=out_spec,
                params=0,
                macs=macs,
            )
        ],
        converter=converter_version(),
    )
    write_manifest(out_dir, manifest)
    return out_dir
