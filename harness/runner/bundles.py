"""The bundle a run executes: an existing bundle directory, or a zoo model exported once (cached)."""

from __future__ import annotations

from pathlib import Path

from harness.runner.observer import NullObserver, RunObserver
from models.bundle import MANIFEST_NAME, BundleManifest, read_manifest

__all__ = ["ExportProgress", "ensure_bundle"]


class ExportProgress:
    """The exporter's ``progress(done, total)`` callback as one task of a :class:`RunObserver`.

    The task opens at the first call (when the total is known), advances a step per call, and
    :meth:`close` closes it (if it was opened).
    """

    def __init__(self, observer: RunObserver, description: str):
        self.observer = observer
        self.description = description
        self.task: int | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.observer.task(self.description, total)
        self.observer.advance(self.task)

    def close(self) -> None:
        if self.task is not None:
            self.observer.done(self.task)
            self.task = None


def ensure_bundle(
    model: str, quant: str, bundles_dir: Path, *, observer: RunObserver | None = None
) -> tuple[Path, BundleManifest]:
    """``model`` is a bundle directory (has manifest.json) or a zoo name / model file.

    Zoo models are exported to ``bundles_dir/<model>-<quant>`` (as ``jointdnn export`` names them)
    unless that bundle is already there; the artifact cache makes re-exports cheap. An export is one
    ``observer`` task, advanced artifact by artifact.
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

    progress = ExportProgress(observer or NullObserver(), f"exporting {model} ({quant})")
    try:
        return out, export_bundle(model, quant, out, progress=progress)
    finally:
        progress.close()
