"""The butterfly study: train bottleneck variants of a model at one cut and tabulate what they cost.

For a base model, a cut layer and a list of channel counts c', :func:`run_study` trains the base model,
then for every c' inserts a butterfly unit (starting from the trained base weights) and trains it end to
end, and (optionally) fits the training-free PCA baseline with k = c'. Every row records the bytes that
cross the network at the cut, their ratio to the raw float32 cut tensor, the held-out accuracy and its
change from the base model, and (optionally) the device (head) and cloud (tail) latency of the exported
TFLite segments measured with LiteRT on this host. :func:`write_study` writes the CSV and the PNG plot.
"""

from __future__ import annotations

import csv
import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from models.butterfly import REDUCE_LAYER, ButterflyConfig, encode_features, insert_butterfly
from models.errors import UsageError
from models.feature_pca import PCA_REDUCE_LAYER, fit_cut_pca, insert_pca
from models.training import TrainConfig, accuracy, train_classifier

if TYPE_CHECKING:
    import keras

    from models.datasets import ImageDataset

__all__ = ["StudyRow", "measure_split_latency", "run_study", "write_study"]

Variant = Literal["base", "butterfly", "pca", "stream"]


@dataclass
class StudyRow:
    """One model variant at the cut; bytes are per input image, latencies medians in ms."""

    model: str
    variant: Variant
    cut_layer: str  # the layer after which the network is cut in this variant
    channels: int  # channels of the sent tensor (C for the base model, c' or k for the variants)
    cut_shape: str  # "HxWxC" of the sent tensor
    cut_bytes: int  # bytes sent: float32 for the base model, 8-bit codes for the variants
    cut_bytes_zstd: int  # the same after lossless zstd coding (test set mean, rounded up)
    raw_fp32_bytes: int  # the base model's float32 cut tensor
    ratio: float  # raw_fp32_bytes / cut_bytes
    accuracy: float  # held-out top-1, fraction
    accuracy_delta_pts: float  # (accuracy - base accuracy) * 100, percentage points
    device_ms: float = float("nan")  # head segments (input .. cut) on LiteRT, this host
    cloud_ms: float = float("nan")  # tail segments (cut .. output) on LiteRT, this host


def _sent_features(model: keras.Model, layer: str, x: np.ndarray) -> np.ndarray:
    from models.feature_pca import cut_features

    return cut_features(model, layer, x)


def _zstd_bytes(features: np.ndarray, low: float, high: float) -> int:
    """Mean zstd-coded size of one image's 8-bit codes over ``features`` (N, ...)."""
    sizes = [encode_features(f, low, high, codec="zstd").nbytes for f in features]
    return int(np.ceil(np.mean(sizes)))


def measure_split_latency(
    model: keras.Model,
    cut_layer: str,
    work_dir: Path,
    *,
    quant: str = "fp32",
    runs: int = 20,
    cache_dir: Path | None = None,
    calibration: np.ndarray | None = None,
) -> tuple[float, float]:
    """Median latency (ms) of the head (segments up to ``cut_layer``) and of the tail, on LiteRT.

    Exports the model with ``models.export.export_bundle`` cut only at ``cut_layer`` (two segments)
    and times both segments with :class:`models.runtime.SegmentChain`, one thread.
    """
    from models.export import export_bundle
    from models.runtime import SegmentChain

    manifest = export_bundle(
        model,
        quant,
        work_dir,
        cache_dir=cache_dir,
        calibration_inputs=calibration,
        include_whole=False,
        cuts=[cut_layer],
        model_name=model.name,
    )
    chain = SegmentChain(work_dir, manifest=manifest)
    k = manifest.cut_layers.index(cut_layer) + 1
    rng = np.random.default_rng(0)
    x = chain.prepare_input(rng.random(tuple(manifest.input.shape), dtype=np.float32))
    head: list[float] = []
    tail: list[float] = []
    for _ in range(runs + 2):  # the first two runs warm up
        mid = chain.run(x, 0, k)
        end = chain.run(mid.output, k, len(chain))
        head.append(mid.total_ms)
        tail.append(end.total_ms)
    return statistics.median(head[2:]), statistics.median(tail[2:])


def run_study(
    model: keras.Model,
    cut_layer: str,
    channels: Sequence[int],
    data: ImageDataset,
    *,
    base_training: TrainConfig = TrainConfig(epochs=4),
    variant_training: TrainConfig = TrainConfig(epochs=2),
    stride: int = 1,
    pca: bool = True,
    latency_dir: Path | None = None,
    quant: str = "fp32",
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    models_dir: Path | None = None,
    streaming: bool = False,
) -> list[StudyRow]:
    """Train ``model`` (in place) and its variants on ``data``; one :class:`StudyRow` per variant.

    ``latency_dir`` set: export every variant below it and measure device/cloud latency; otherwise the
    latency columns stay NaN. The PCA baseline is fit on the training images (at most 512).
    ``models_dir`` set: every trained model is saved there as ``<name>.keras``.
    ``streaming`` also learns the reduction with k = c' by streaming GHA (fixed point, as a phone would,
    :func:`models.streaming_pca.fit_stream`) on the same calibration features, deployed like the PCA.
    """
    if not channels:
        raise UsageError("give at least one channel count, e.g. --channels 2,4,8,16")
    say = progress or (lambda _msg: None)
    from models.butterfly import check_butterfly_cut

    check_butterfly_cut(model, cut_layer)  # fail before training, not after
    say(f"training base model {model.name} for {base_training.epochs} epochs")
    train_classifier(model, data, base_training)
    base_acc = accuracy(model, data.x_test, data.y_test)
    calibration = data.x_train[:512]
    test = data.x_test
    cut_shape = tuple(int(d) for d in model.get_layer(cut_layer).output.shape[1:])
    raw = int(np.prod(cut_shape)) * 4  # float32 bytes at the base cut

    def row(variant: Variant, net: keras.Model, layer: str, low: float, high: float) -> StudyRow:
        shape = tuple(int(d) for d in net.get_layer(layer).output.shape[1:])
        count = int(np.prod(shape))
        if variant == "base":
            sent = count * 4  # float32
            zstd_size = _zstd_float(_sent_features(net, layer, test[:64]))
        else:
            sent = count  # one byte per value
            zstd_size = _zstd_bytes(_sent_features(net, layer, test[:64]), low, high)
        acc = base_acc if variant == "base" else accuracy(net, test, data.y_test)
        result = StudyRow(
            model=model.name,
            variant=variant,
            cut_layer=layer,
            channels=shape[-1],
            cut_shape="x".join(map(str, shape)),
            cut_bytes=sent,
            cut_bytes_zstd=zstd_size,
            raw_fp32_bytes=raw,
            ratio=raw / sent,
            accuracy=acc,
            accuracy_delta_pts=(acc - base_acc) * 100.0,
        )
        if latency_dir is not None:
            say(f"exporting {net.name} ({quant}) and timing head/tail")
            result.device_ms, result.cloud_ms = measure_split_latency(
                net,
                layer,
                latency_dir / net.name,
                quant=quant,
                cache_dir=cache_dir,
                calibration=calibration[:64],
            )
        if models_dir is not None:
            models_dir.mkdir(parents=True, exist_ok=True)
            net.save(models_dir / f"{net.name}.keras")
        return result

    rows = [row("base", model, cut_layer, 0.0, 0.0)]
    for c in channels:
        cfg = ButterflyConfig(channels=int(c), stride=stride)
        net = insert_butterfly(model, cut_layer, cfg)
        say(f"training butterfly c'={c} for {variant_training.epochs} epochs")
        train_classifier(net, data, variant_training)
        rows.append(row("butterfly", net, REDUCE_LAYER, *cfg.value_range))
        if pca and c <= cut_shape[-1]:
            say(f"fitting PCA k={c}")
            fitted = fit_cut_pca(model, cut_layer, calibration, int(c))
            rows.append(
                row("pca", insert_pca(model, cut_layer, fitted), PCA_REDUCE_LAYER, fitted.low, fitted.high)
            )
        if streaming and c <= cut_shape[-1]:
            from models.feature_pca import cut_features
            from models.streaming_pca import fit_stream

            say(f"learning the reduction k={c} by streaming GHA (fixed point)")
            learnt = fit_stream(
                cut_features(model, cut_layer, calibration), int(c), fixed_point=True
            ).to_pca()
            net = insert_pca(model, cut_layer, learnt, name_suffix=f"stream{c}")
            rows.append(row("stream", net, PCA_REDUCE_LAYER, learnt.low, learnt.high))
    return rows


def _zstd_float(features: np.ndarray) -> int:
    """Mean zstd-coded size of one image's raw float32 features."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=3)
    return int(np.ceil(np.mean([len(compressor.compress(f.astype(np.float32).tobytes())) for f in features])))


def write_study(rows: Sequence[StudyRow], out_dir: Path, *, stem: str = "butterfly") -> tuple[Path, Path]:
    """Write ``out_dir/<stem>.csv`` and ``out_dir/<stem>.png`` (accuracy vs bytes sent); return both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{stem}.csv"
    fields = [f.name for f in dataclasses.fields(StudyRow)]
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow(dataclasses.asdict(r))
    fig, (ax_acc, ax_ms) = plt.subplots(1, 2, figsize=(10, 4))
    for variant, marker in (("base", "*"), ("butterfly", "o"), ("pca", "s"), ("stream", "^")):
        chosen = [r for r in rows if r.variant == variant]
        if not chosen:
            continue
        ax_acc.plot(
            [r.cut_bytes for r in chosen], [100 * r.accuracy for r in chosen], marker=marker, label=variant
        )
        for r in chosen:
            ax_acc.annotate(str(r.channels), (r.cut_bytes, 100 * r.accuracy), fontsize=7)
        ax_ms.plot(
            [r.cut_bytes for r in chosen],
            [r.device_ms + r.cloud_ms for r in chosen],
            marker=marker,
            label=variant,
        )
    ax_acc.set(xscale="log", xlabel="bytes sent at the cut (per image)", ylabel="test accuracy (%)")
    ax_ms.set(xscale="log", xlabel="bytes sent at the cut (per image)", ylabel="device + cloud compute (ms)")
    title = f"{rows[0].model} cut after {rows[0].cut_layer}" if rows else "butterfly study"
    fig.suptitle(title)
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    ax_ms.grid(alpha=0.3)
    fig.tight_layout()
    png_path = out_dir / f"{stem}.png"
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, png_path
