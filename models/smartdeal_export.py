"""Export a trained SmartDeal model: the folded bundle plus the compact artifact of its SD segments.

:func:`export_smartdeal` folds the model (:func:`models.smartdeal.fold_smartdeal`), exports the folded
model as an ordinary bundle (:func:`models.export.export_bundle`), then packs every segment that holds an
SD kernel into one artifact (:mod:`models.smartdeal_artifact`) and checks that the artifact rebuilds those
segment files byte for byte. Only float32 bundles: an int8 or float16 converter rewrites the kernels, so
there is nothing exact to rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import BundleError, UsageError
from models.smartdeal import artifact_layers, config_of, fold_smartdeal, from_matrix, reconstruct
from models.smartdeal_artifact import SizeReport, build_artifact, rebuild_segments, tflite_kernel_bytes

if TYPE_CHECKING:
    import keras

    from models.bundle import BundleManifest

__all__ = ["export_smartdeal", "write_smartdeal_artifact"]


def write_smartdeal_artifact(
    sd_model: keras.Model, bundle_dir: Path, manifest: BundleManifest, artifact: Path
) -> SizeReport:
    """Pack the SD kernels found in ``bundle_dir``'s segment files into ``artifact``; return its sizes."""
    config = config_of(sd_model)
    pending = artifact_layers(sd_model)
    dense = {
        layer.name: tflite_kernel_bytes(
            from_matrix(reconstruct(layer.c, layer.basis), layer.shape), layer.shape.kind
        )
        for layer in pending
    }
    segments = []
    for entry in manifest.segments:
        data = (bundle_dir / entry.file).read_bytes()
        here = [layer for layer in pending if dense[layer.name] in data]
        if here:
            segments.append((entry.file, data, here))
            pending = [layer for layer in pending if layer not in here]
    if not segments:
        raise BundleError("no SmartDeal kernel was found verbatim in the exported segments")
    blob, report = build_artifact(segments, exp_min=config.exp_min, code_bits=config.code_bits)
    report.layers_left_dense.extend(layer.name for layer in pending)
    rebuilt = rebuild_segments(blob)  # raises if any byte differs
    for file, data in rebuilt.items():
        if data != (bundle_dir / file).read_bytes():
            raise BundleError(f"SmartDeal artifact does not rebuild {file} exactly")
    try:
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_bytes(blob)
    except OSError as exc:
        raise UsageError(f"cannot write {artifact}: {exc.strerror or exc}") from None
    return report


def export_smartdeal(
    sd_model: keras.Model,
    out_dir: Path,
    artifact: Path,
    *,
    cuts: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    include_whole: bool = False,
    model_name: str | None = None,
) -> tuple[BundleManifest, SizeReport]:
    """Fold ``sd_model``, export it (fp32) to ``out_dir`` and write the compact artifact to ``artifact``."""
    from models.export import export_bundle

    folded = fold_smartdeal(sd_model)
    manifest = export_bundle(
        folded,
        "fp32",
        out_dir,
        cache_dir=cache_dir,
        include_whole=include_whole,
        cuts=cuts,
        model_name=model_name or folded.name,
    )
    return manifest, write_smartdeal_artifact(sd_model, out_dir, manifest, artifact)
