"""The bundle a run executes: an existing bundle directory, or a zoo model exported once (cached)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.runner.observer import NullObserver, RunObserver
from models.bundle import MANIFEST_NAME, BundleManifest, read_manifest

__all__ = ["ButterflyBundle", "ExportProgress", "ensure_bundle", "ensure_butterfly_bundle"]


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


@dataclass(frozen=True)
class ButterflyBundle:
    """A zoo model with a butterfly unit (:mod:`models.butterfly`) inserted after ``cut``, exported coarse.

    ``cuts``: the cut layers the bundle keeps (fewer segments export and execute faster); the butterfly's
    quantizer (``butterfly_reduce``) is always one of them. The unit's weights are untrained (seeded):
    right for latency, energy and bytes, not for accuracy. ``include_whole`` False skips converting the
    whole model (half the export time); executions are then checked against the in-process chain.
    """

    base: str  # zoo model name
    cut: str  # layer the unit follows
    channels: int  # c' crossing the network
    stride: int = 2
    cuts: Sequence[str] = field(default_factory=tuple)
    include_whole: bool = True

    @property
    def name(self) -> str:
        return f"{self.base}_butterfly_{self.cut}_c{self.channels}s{self.stride}"


def ensure_butterfly_bundle(
    spec: ButterflyBundle, quant: str, bundles_dir: Path, *, observer: RunObserver | None = None
) -> Path:
    """The bundle directory of ``spec`` (exported once, then reused); returns it."""
    out = Path(bundles_dir) / f"{spec.name}-{quant}"
    if (out / MANIFEST_NAME).is_file() and read_manifest(out).quant == quant:
        return out
    from models.butterfly import REDUCE_LAYER, ButterflyConfig, insert_butterfly
    from models.export import export_bundle
    from models.zoo import load_model

    model = insert_butterfly(load_model(spec.base), spec.cut, ButterflyConfig(spec.channels, spec.stride))
    cuts = list(dict.fromkeys([REDUCE_LAYER, *spec.cuts]))
    progress = ExportProgress(observer or NullObserver(), f"exporting {spec.name} ({quant})")
    try:
        export_bundle(
            model,
            quant,
            out,
            cuts=cuts,
            model_name=spec.name,
            include_whole=spec.include_whole,
            progress=progress,
        )
    finally:
        progress.close()
    return out
