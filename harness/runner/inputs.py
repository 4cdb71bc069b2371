"""The run's inputs: real photos, each with its JPEG (the status quo's upload) and reference outputs.

Every execution of a run computes on one of these photos (``repeat`` i uses photo ``i mod count``):
scikit-learn's two sample photos by default, or the user's image files (``--image``), fitted to the
model input (:func:`models.datasets.load_photos`). Each photo is also JPEG-coded at the run's quality
(:func:`server.jpeg.encode_jpeg`): those bytes are what a ``+jpeg`` schedule uploads, and the server
computes on their decode, so a JPEG execution is checked against the whole model's output on the
decoded JPEG (:func:`server.jpeg.decode_jpeg`, the same function the server uses).

The planner's JPEG inputs are measured, not fitted: the mean encoded size of the run's photos, and the
server's decode time, timed by the server itself (``Server-Timing: decode``) on these JPEGs before any
schedule runs (:func:`profile_jpeg_decode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.planner.input_codec import JpegInput
from harness.runner.observer import NullObserver, RunObserver
from harness.runner.reference import reference_output
from harness.runner.session import LinkSession
from models.bundle import BundleManifest
from models.datasets import load_photos
from models.errors import UsageError
from server.jpeg import decode_jpeg, encode_jpeg

__all__ = ["RunInput", "jpeg_input", "prepare_inputs", "profile_jpeg_decode"]


@dataclass(frozen=True, eq=False)
class RunInput:
    """One photo as the model input, raw and JPEG-coded, with the whole model's output on each."""

    x: np.ndarray  # (1, H, W, 3) float32 in [0, 1]: the photo (uint8 / 255)
    jpeg: bytes  # the photo encoded at the run's quality: what a +jpeg schedule uploads
    x_jpeg: np.ndarray  # (1, H, W, 3) float32: the decoded JPEG, what the server computes on
    reference: np.ndarray  # whole model's float32 output on x
    reference_jpeg: np.ndarray  # ... on x_jpeg

    def for_codec(self, codec: str) -> tuple[np.ndarray, np.ndarray, bytes | None]:
        """(input, reference, JPEG bytes or None) of an execution uploading the input as ``codec``."""
        if codec == "jpeg":
            return self.x_jpeg, self.reference_jpeg, self.jpeg
        return self.x, self.reference, None


def prepare_inputs(
    bundle_dir: Path, manifest: BundleManifest, images: Sequence[Path] = (), quality: int = 90
) -> list[RunInput]:
    """The run's photos (``images``, else sklearn's two) fitted to the model input, coded and referenced."""
    shape = tuple(manifest.input.shape)  # (1, H, W, C)
    if len(shape) != 4 or shape[-1] != 3:
        raise UsageError(
            f"{manifest.model} takes input {list(shape)}; photos need an image model (1, H, W, 3)"
        )
    if not 1 <= quality <= 95:
        raise UsageError(f"--jpeg-quality must be between 1 and 95, got {quality}")
    inputs = []
    for photo in load_photos((int(shape[1]), int(shape[2])), tuple(Path(p) for p in images)):
        x = photo[None]  # (1, H, W, 3)
        data = encode_jpeg(x, quality)
        x_jpeg = decode_jpeg(data, shape)
        inputs.append(
            RunInput(
                x=x,
                jpeg=data,
                x_jpeg=x_jpeg,
                reference=reference_output(bundle_dir, manifest, x),
                reference_jpeg=reference_output(bundle_dir, manifest, x_jpeg),
            )
        )
    return inputs


def profile_jpeg_decode(
    session: LinkSession, inputs: Sequence[RunInput], runs: int = 6, observer: RunObserver | None = None
) -> float:
    """Median server-side decode time (ms) of the run's JPEGs: ``runs`` requests to segment 0, timed by
    the server (``decode`` in Server-Timing), photos in turn. A profile, made before any schedule runs."""
    observer = observer or NullObserver()
    task = observer.task(f"{session.link.name}: server JPEG decode", runs)
    times = []
    for i in range(runs):
        reply = session.infer_jpeg(inputs[i % len(inputs)].jpeg, to_segment=1)
        times.append(reply.decode_ms)
        observer.advance(task)
    observer.done(task)
    return float(np.median(times))


def jpeg_input(inputs: Sequence[RunInput], decode_ms: float, quality: int) -> JpegInput:
    """The planner's JPEG input: the mean encoded size of the run's photos and the measured decode time."""
    return JpegInput(
        jpeg_bytes=float(np.mean([len(i.jpeg) for i in inputs])), decode_ms=decode_ms, quality=quality
    )
