"""A bundle: a model's chain of ``.tflite`` segments plus a JSON manifest that describes them.

The bundle is the unit that ``jointdnn export`` writes and that the cloud server and devices load. It
imports without TensorFlow (pydantic + hashlib only).

Layout of a bundle directory::

    <bundle>/manifest.json
    <bundle>/segment_000.tflite ... segment_NNN.tflite   # segment k maps tensor k -> tensor k+1
    <bundle>/whole.tflite                                # the whole model, same quantization

Tensor ``k`` is the input of segment ``k``; tensor 0 is the model input and tensor ``n`` the model
output. For int8 bundles every segment has int8 input/output tensors whose (scale, zero_point) are
recorded per tensor; the chain runner requantizes at a boundary where the producer's output and the
consumer's input parameters differ, and quantizes the float model input / dequantizes the final output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from models.errors import BundleError

__all__ = [
    "MANIFEST_NAME",
    "BundleManifest",
    "QuantParams",
    "SegmentEntry",
    "TensorSpec",
    "check_file_hash",
    "file_sha256",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1

Quantization = Literal["fp32", "fp16", "int8"]


class QuantParams(BaseModel):
    """Affine quantization of an int8 tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int


class TensorSpec(BaseModel):
    """Shape (batch included, e.g. ``[1, 224, 224, 3]``), dtype name and optional quantization."""

    shape: list[int]
    dtype: str  # numpy dtype name: "float32", "int8", ...
    quant: QuantParams | None = None

    @property
    def nbytes(self) -> int:  # bytes of one tensor of this spec
        import numpy as np

        count = 1
        for dim in self.shape:
            count *= max(dim, 1)
        return count * np.dtype(self.dtype).itemsize


class SegmentEntry(BaseModel):
    """One segment of the chain: its file, the layers it covers and its boundary tensors."""

    index: int
    file: str
    sha256: str
    first_layer: str
    last_layer: str
    input: TensorSpec
    output: TensorSpec
    params: int = 0
    macs: int = 0  # multiply-accumulates for one input

    @property
    def out_bytes(self) -> int:  # bytes that cross the network if the chain is cut after this segment
        return self.output.nbytes


class BundleManifest(BaseModel):
    """Everything a server or device needs to know about a bundle, without loading TensorFlow."""

    format_version: int = FORMAT_VERSION
    model: str
    quant: Quantization
    input: TensorSpec  # the float model input (before any quantization)
    output: TensorSpec  # the float model output (after dequantization)
    segments: list[SegmentEntry] = Field(min_length=1)
    whole_file: str | None = None
    whole_sha256: str | None = None
    cut_layers: list[str] = Field(default_factory=list)  # last layer of segments 0..n-2
    converter: str = ""  # e.g. "tensorflow 2.21.0"

    @property
    def num_segments(self) -> int:
        return len(self.segments)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle_dir: Path, *, verify_hashes: bool = False) -> BundleManifest:
    """Load and validate ``bundle_dir/manifest.json``; check every segment file exists.

    ``verify_hashes`` (what loading a bundle to serve or run it does) also checks that every segment
    file and the whole model are the files the manifest names, by sha256.
    """
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(
            f"{bundle_dir} is not a bundle: {MANIFEST_NAME} is missing (write one with `jointdnn export`)"
        )
    try:
        manifest = BundleManifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise BundleError(f"{path} is not a valid bundle manifest: {first}") from None
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(
            f"{path} has format_version {manifest.format_version}; this harness reads {FORMAT_VERSION}. "
            "Re-export the bundle with this version of `jointdnn export`."
        )
    for position, segment in enumerate(manifest.segments):
        if segment.index != position:
            raise BundleError(f"{path}: segment at position {position} has index {segment.index}")
        segment_path = bundle_dir / segment.file
        if Path(segment.file).name != segment.file or not segment_path.is_file():
            raise BundleError(f"{path}: segment file {segment.file!r} is missing from the bundle")
        if verify_hashes:
            check_file_hash(segment_path, segment.sha256)
    if manifest.whole_file and verify_hashes and (bundle_dir / manifest.whole_file).is_file():
        check_file_hash(bundle_dir / manifest.whole_file, manifest.whole_sha256 or "")
    return manifest


def check_file_hash(path: Path, expected: str, actual: str | None = None) -> None:
    """:class:`BundleError` unless ``path`` (sha256 ``actual`` if already computed) hashes to ``expected``."""
    actual = actual or file_sha256(path)
    if actual != expected:
        raise BundleError(
            f"{path} is not the file its manifest names (sha256 {actual[:12]}..., manifest "
            f"{expected[:12] or 'none'}...): the bundle was modified; re-export it with `jointdnn export`"
        )


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> Path:
    """Write the manifest atomically (temp file + rename) and return its path."""
    path = Path(bundle_dir) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    tmp.replace(path)
    return path
