"""The bundle a run executes: an existing bundle directory, or a zoo model exported once (cached)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.bundle import MANIFEST_NAME, BundleManifest, read_manifest

__all__ = ["ensure_bundle"]


def ensure_bundle(
    model: str, quant: str, bundles_dir: Path, *, progress: Callable[[int, int], None] | None = None
) -> tuple[Path, BundleManifest]:
    """``model`` is a bundle directory (has manifest.json) or a zoo name / model file.

        Zoo models are exported to ``bundles_dir/<model>-<quant>`` (as ``jointdnn export`` names them)
        unless that bundle is already there; the artifact cache makes re-exports cheap. ``progress(done,
    total)`` follows the export, artifact by artifact.
    """
    candidate = Path(model)
    if (candidate / MANIFEST_NAME).is_file():
        return candidate, read_manifest(candidate)
    name = candidate.stem if candidate.suffix else model
    out = Path(bundles_dir) / f"{name}-{quant}"
    if (out / MANIFEST_NAME).is_file():
        manifest = read_manifest(out)
        if manifest.quant == quant:
            return out, manifest
    from models.export import export_bundle  # TensorFlow: only when a bundle must be written

    return out, export_bundle(model, quant, out, progress=progress)
