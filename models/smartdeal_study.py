"""The SmartDeal study: what the mobile half weighs, and how accurate it is, as fp32, int8 and SD.

:func:`run_study` trains the base model for ``base_epochs``, then spends the same further budget of
``epochs`` on each variant: the fp32 model trains on; every SD setting (basis, threshold) is decomposed
from the same base snapshot (:func:`models.smartdeal.decompose`) and fine-tuned with the straight-through
estimator. Accuracy is top-1 on the held-out split; the int8 rows are the TFLite full-integer conversion
of the fp32 model (and, as "sd+int8act", of the folded SD model) run on LiteRT.

Weight bytes of the mobile half count what a phone stores after BatchNormalization is folded into the
preceding layer (as the TFLite converter does): per Conv2D / DepthwiseConv2D / Dense layer

    fp32  4 * kernel + 4 * out                    (kernel and bias)
    int8  1 * kernel + 8 * out                    (int8 kernel, int32 bias, fp32 per-channel scale)
    sd    mask bits + sign/exponent codes + fp16 B + 4 * out   (models.smartdeal_artifact)
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.smartdeal import (
    SmartDealConfig,
    fold_smartdeal,
    sd_scope,
    smartdeal_layers,
    to_smartdeal,
)
from models.smartdeal_artifact import encoded_layer_bytes
from models.training import TrainConfig, accuracy, train_classifier

if TYPE_CHECKING:
    import keras

    from models.datasets import ImageDataset

__all__ = ["SmartDealRow", "mobile_weight_bytes", "run_study", "tflite_accuracy", "write_study"]

_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense", "SmartDealLayer")


@dataclass
class SmartDealRow:
    """One variant of the model; bytes are the mobile half's weights (see the module docstring)."""

    model: str
    method: str  # fp32 | int8 | sd | sd+int8act
    cut_layer: str  # last layer of the mobile half ("" = whole model)
    basis: int  # b (0: per-layer choice / not SD)
    threshold: float
    density: float  # nonzero fraction of C (1.0 for dense weights)
    weight_bytes: int
    ratio_vs_fp32: float
    ratio_vs_int8: float
    accuracy: float  # held-out top-1, fraction
    accuracy_delta_pts: float  # vs the fp32 row, percentage points


def mobile_weight_bytes(model: keras.Model, cut: str | None, method: str) -> int:
    """Stored weight bytes of the layers up to ``cut`` (all when None) for ``method`` fp32 | int8 | sd."""
    total = 0
    for name in sd_scope(model, cut):
        layer = model.get_layer(name)
        kind = type(layer).__name__
        if kind == "BatchNormalization" or not layer.weights:
            continue  # BN folds into the preceding layer's bias
        if kind not in _WEIGHTED:
            total += 4 * layer.count_params()
            continue
        if kind == "SmartDealLayer":
            out = layer.shape.out
            nonzeros = int(np.count_nonzero(layer.quantized_c()))
            config = SmartDealConfig(threshold=layer.threshold, exp_min=layer.exp_min, exp_max=layer.exp_max)
            code_bits = config.code_bits
            total += encoded_layer_bytes(layer.shape, nonzeros, code_bits) + 4 * out
            continue
        kernel = int(np.prod(layer.kernel.shape))
        out = int(layer.kernel.shape[-1]) * (int(layer.kernel.shape[-2]) if kind == "DepthwiseConv2D" else 1)
        total += (4 * kernel + 4 * out) if method == "fp32" else (kernel + 8 * out)
    return total


def tflite_accuracy(model: keras.Model, data: ImageDataset, quant: str) -> float:
    """Top-1 accuracy of ``model`` converted to TFLite (``quant``) and run on LiteRT, one image at a time."""
    from models.export import convert
    from models.runtime import SegmentRunner

    runner = SegmentRunner(convert(model, quant, data.x_train[:128]))  # type: ignore[arg-type]
    correct = 0
    for image, label in zip(data.x_test, data.y_test, strict=True):
        x = image[None]
        if runner.input_quant is not None:
            q = runner.input_quant
            x = np.clip(np.round(x / q.scale + q.zero_point), -128, 127).astype(runner.input_dtype)
        correct += int(np.argmax(runner.run(x.astype(runner.input_dtype))) == label)
    return correct / len(data.y_test)


def _clone_trained(model: keras.Model) -> keras.Model:
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def run_study(
    base: keras.Model,
    data: ImageDataset,
    settings: Sequence[SmartDealConfig],
    *,
    cut: str | None = None,
    base_training: TrainConfig = TrainConfig(epochs=4),
    training: TrainConfig = TrainConfig(epochs=4),
    int8: bool = True,
    progress: Callable[[str], None] | None = None,
    models_dir: Path | None = None,
) -> list[SmartDealRow]:
    """Train ``base`` (in place) and its SD variants; one row per variant (fp32, int8, each SD setting)."""
    say = progress or (lambda _msg: None)
    sd_scope(base, cut)  # fail on a bad cut before training
    for config in settings:  # fail on a bad basis / layer type before training
        to_smartdeal(base, config, cut=cut, init="random")
    say(f"training {base.name} for {base_training.epochs} epochs")
    train_classifier(base, data, base_training)
    snapshot = _clone_trained(base)
    say(f"training fp32 {base.name} for {training.epochs} more epochs")
    train_classifier(base, data, training)
    fp32_acc = accuracy(base, data.x_test, data.y_test)
    fp32_bytes = mobile_weight_bytes(base, cut, "fp32")
    int8_bytes = mobile_weight_bytes(base, cut, "int8")
    cut_name = cut or ""

    def row(
        method: str, nbytes: int, acc: float, config: SmartDealConfig | None, density: float
    ) -> SmartDealRow:
        return SmartDealRow(
            model=base.name,
            method=method,
            cut_layer=cut_name,
            basis=(config.basis or 0) if config else 0,
            threshold=config.threshold if config else 0.0,
            density=density,
            weight_bytes=nbytes,
            ratio_vs_fp32=fp32_bytes / nbytes,
            ratio_vs_int8=int8_bytes / nbytes,
            accuracy=acc,
            accuracy_delta_pts=(acc - fp32_acc) * 100.0,
        )

    rows = [row("fp32", fp32_bytes, fp32_acc, None, 1.0)]
    if int8:
        say("converting fp32 to int8")
        rows.append(row("int8", int8_bytes, tflite_accuracy(base, data, "int8"), None, 1.0))
    for config in settings:
        sd = to_smartdeal(snapshot, config, cut=cut)
        say(f"fine-tuning SD b={config.basis or 'auto'} t={config.threshold} for {training.epochs} epochs")
        train_classifier(sd, data, training)
        layers = smartdeal_layers(sd)
        density = sum(float(np.count_nonzero(x.quantized_c())) for x in layers) / sum(
            x.shape.weights for x in layers
        )
        nbytes = mobile_weight_bytes(sd, cut, "sd")
        rows.append(row("sd", nbytes, accuracy(sd, data.x_test, data.y_test), config, density))
        if int8:
            folded = fold_smartdeal(sd)
            rows.append(row("sd+int8act", nbytes, tflite_accuracy(folded, data, "int8"), config, density))
        if models_dir is not None:
            models_dir.mkdir(parents=True, exist_ok=True)
            sd.save(models_dir / f"{sd.name}-b{config.basis or 'auto'}-t{config.threshold:g}.keras")
    return rows


def write_study(rows: Sequence[SmartDealRow], out_dir: Path, *, stem: str) -> tuple[Path, Path]:
    """``out_dir/<stem>.csv`` (one row per variant) and ``.png`` (accuracy vs mobile-half weight bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{stem}.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in dataclasses.fields(SmartDealRow)])
        writer.writeheader()
        for r in rows:
            writer.writerow(dataclasses.asdict(r))
    fig, ax = plt.subplots(figsize=(6, 4))
    markers: dict[str, Any] = {"fp32": "*", "int8": "s", "sd": "o", "sd+int8act": "^"}
    for method, marker in markers.items():
        chosen = [r for r in rows if r.method == method]
        if not chosen:
            continue
        ax.scatter(
            [r.weight_bytes for r in chosen], [100 * r.accuracy for r in chosen], marker=marker, label=method
        )
        if method.startswith("sd"):
            for r in chosen:
                ax.annotate(f"t={r.threshold:g}", (r.weight_bytes, 100 * r.accuracy), fontsize=7)
    ax.set(xscale="log", xlabel="mobile-half weight bytes", ylabel="test accuracy (%)")
    ax.set_title(
        f"{rows[0].model}: SmartDeal" + (f" up to {rows[0].cut_layer}" if rows and rows[0].cut_layer else "")
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = out_dir / f"{stem}.png"
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, png_path
