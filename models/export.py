"""Export a model's segment chain (and the whole model) to ``.tflite`` as a bundle, through the cache.

Quantizations:

* ``fp32`` — plain conversion;
* ``fp16`` — float16 weights, float32 input/output;
* ``int8`` — full-integer: int8 weights, activations, input and output. Every segment is calibrated on
  the real activations that flow into it (the float model's prefix run on the calibration inputs), so
  the output scale of segment k and the input scale of segment k+1 describe the same tensor.

A segment's cache key hashes its layers' architecture and weights (see :mod:`models.fingerprint`), its
input shape, the quantization, the converter version and, for int8, the whole model and the calibration
inputs (the activations depend on every upstream layer). A second export converts nothing:
:data:`STATS` counts conversions and cache hits.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from models.bundle import BundleManifest, QuantParams, SegmentEntry, TensorSpec, write_manifest
from models.cache import ArtifactCache, CachedArtifact
from models.errors import ConversionError, UsageError
from models.fingerprint import LayerDigests, digest_bytes, layer_digests
from models.graph import LayerGraph, analyze
from models.split import segment_model
from models.tf_import import ensure_tensorflow

if TYPE_CHECKING:
    import keras

__all__ = [
    "EXPORT_FORMAT",
    "QUANTIZATIONS",
    "STATS",
    "ExportStats",
    "convert",
    "converter_version",
    "default_calibration_inputs",
    "export_bundle",
]

Quant = Literal["fp32", "fp16", "int8"]
QUANTIZATIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
EXPORT_FORMAT = "jointdnn-export-1"  # bump when the conversion recipe changes, to invalidate the cache
CALIBRATION_SAMPLES = 16


@dataclass
class ExportStats:
    """Process-wide counters: how many artifacts were converted and how many came from the cache."""

    conversions: int = 0
    cache_hits: int = 0


STATS = ExportStats()

ProgressFn = Callable[[int, int], None]  # (done, total) artifacts


def converter_version() -> str:
    """The converter that produced the artifacts, e.g. ``tensorflow 2.21.0``."""
    ensure_tensorflow()
    import tensorflow as tf

    return f"tensorflow {tf.__version__}"


def default_calibration_inputs(input_shape: Sequence[int], *, seed: int = 0) -> np.ndarray:
    """``CALIBRATION_SAMPLES`` seeded inputs uniform in [0, 1): (N, H, W, C) float32, image-like."""
    rng = np.random.default_rng(seed)
    return rng.random((CALIBRATION_SAMPLES, *input_shape), dtype=np.float32)


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[Path]:
    """Send fds 1 and 2 (the converter's C++ logging) to a temp file for the duration; yield its path."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    log = tempfile.NamedTemporaryFile(prefix="jointdnn-convert-", suffix=".log", delete=False)  # noqa: SIM115
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield Path(log.name)  # Python-level prints ("Saved artifact at ...") go nowhere too
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        log.close()


def convert(model: keras.Model, quant: Quant, calibration: np.ndarray | None = None) -> bytes:
    """Convert one Keras model to ``.tflite`` bytes; ``calibration`` (N, ...) is required for int8."""
    import logging

    ensure_tensorflow()

    import tensorflow as tf

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "int8":
        if calibration is None:
            raise ConversionError("int8 conversion needs calibration inputs")
        samples = calibration

        def representative() -> Iterator[list[np.ndarray]]:
            for i in range(samples.shape[0]):
                yield [samples[i : i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with _quiet_native_output() as log_path:
        try:
            data = converter.convert()
        except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
            tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
            log_path.unlink(missing_ok=True)
            raise ConversionError(
                f"TFLite conversion of {model.name!r} ({quant}) failed: {str(exc).strip()[:300]} {tail[:300]}"
            ) from None
    log_path.unlink(missing_ok=True)
    STATS.conversions += 1
    return bytes(data)


def _tensor_specs(data: bytes) -> dict[str, Any]:
    """Input/output tensor specs of a ``.tflite`` model as JSON-ready dicts (read with LiteRT)."""
    from models.runtime import SegmentRunner

    runner = SegmentRunner(data)

    def spec(shape: tuple[int, ...], dtype: np.dtype[Any], quant: QuantParams | None) -> dict[str, Any]:
        is_int = np.issubdtype(dtype, np.integer)
        return TensorSpec(shape=list(shape), dtype=str(dtype), quant=quant if is_int else None).model_dump(
            mode="json"
        )

    return {
        "input": spec(runner.input_shape, runner.input_dtype, runner.input_quant),
        "output": spec(runner.output_shape, runner.output_dtype, runner.output_quant),
    }


class _Exporter:
    """Export state for one model and quantization: digests, cache, lazily computed calibration data."""

    def __init__(
        self,
        model: keras.Model,
        graph: LayerGraph,
        quant: Quant,
        cache: ArtifactCache,
        calibration_inputs: np.ndarray | None,
    ):
        self.model = model
        self.graph = graph
        self.quant = quant
        self.cache = cache
        self.digests: LayerDigests = layer_digests(model, graph)
        self.version = f"{converter_version()} {EXPORT_FORMAT}"
        self.calibration_inputs = calibration_inputs
        self.salt = ""
        if quant == "int8":
            if self.calibration_inputs is None:
                self.calibration_inputs = default_calibration_inputs(graph.input_shape[1:])
            calib = np.ascontiguousarray(self.calibration_inputs, dtype=np.float32)
            self.calibration_inputs = calib
            self.salt = digest_bytes(self.digests.of_model(), str(calib.shape), calib.tobytes())
        self._activations: dict[int, np.ndarray] = {}  # tensor index -> (N, ...) float activations

    def key(self, start: int, stop: int) -> str:
        return digest_bytes(
            self.digests.of_range(self.graph, start, stop), self.quant, self.version, self.salt
        )

    def activations(self, index: int) -> np.ndarray:
        """Float activations of tensor ``index`` (input of segment ``index``) on the calibration inputs."""
        assert self.calibration_inputs is not None
        if index == 0:
            return self.calibration_inputs
        if index not in self._activations:
            known = max((k for k in self._activations if k < index), default=0)
            x = self.activations(known)
            head = segment_model(self.model, self.graph, known, index)
            self._activations[index] = np.asarray(head(x, training=False))
        return self._activations[index]

    def artifact(self, start: int, stop: int) -> CachedArtifact:
        """The converted segments ``[start, stop)`` from the cache, converting on a miss."""
        key = self.key(start, stop)
        hit = self.cache.get(key)
        if hit is not None:
            STATS.cache_hits += 1
            return hit
        if start == 0 and stop == self.graph.num_segments:
            keras_model = self.model
        else:
            keras_model = segment_model(self.model, self.graph, start, stop)
        calibration = self.activations(start) if self.quant == "int8" else None
        data = convert(keras_model, self.quant, calibration)
        with _quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate"
            specs = _tensor_specs(data)
        meta = {**specs, "sha256": _sha256(data), "start": start, "stop": stop}
        return self.cache.put(key, data, meta)


def _sha256(data: bytes) -> str:
    """Plain hex SHA-256 of ``data`` (what :func:`models.bundle.file_sha256` gives for the file)."""
    return hashlib.sha256(data).hexdigest()


def _copy(src: Path, dst: Path) -> None:
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise UsageError(f"cannot write {dst}: {exc.strerror or exc}") from None


def export_bundle(
    model: str | keras.Model,
    quant: str,
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    calibration_inputs: np.ndarray | None = None,
    include_whole: bool = True,
    cuts: Sequence[str] | None = None,
    model_name: str | None = None,
    progress: ProgressFn | None = None,
) -> BundleManifest:
    """Write a bundle of ``model`` (zoo name, model path or Keras model) to ``out_dir``; return its manifest.

    ``cuts`` keeps only those cut layers (a coarser chain); by default every cut point is used.
    ``calibration_inputs`` (N, H, W, C) float32 calibrate int8 (default: 16 seeded uniform samples).
    """
    if quant not in QUANTIZATIONS:
        raise UsageError(f"unknown quantization {quant!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if isinstance(model, str | Path):
        from models.zoo import MODEL_NAMES, load_model

        name = model_name or (str(model) if str(model) in MODEL_NAMES else Path(model).stem)
        model = load_model(model)
    else:
        name = model_name or model.name
    cache = ArtifactCache(cache_dir)
    graph = analyze(model)
    ranges = graph.segments_for_cuts(list(cuts)) if cuts else [(k, k + 1) for k in range(graph.num_segments)]
    exporter = _Exporter(model, graph, quant, cache, calibration_inputs)  # type: ignore[arg-type]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create bundle directory {out_dir}: {exc.strerror or exc}") from None
    for stale in [*out_dir.glob("segment_*.tflite"), out_dir / "whole.tflite"]:  # from an earlier export
        stale.unlink(missing_ok=True)
    total = len(ranges) + (1 if include_whole else 0)
    entries: list[SegmentEntry] = []
    for index, (start, stop) in enumerate(ranges):
        art = exporter.artifact(start, stop)
        file = f"segment_{index:03d}.tflite"
        _copy(art.path, out_dir / file)
        segs = graph.segments[start:stop]
        entries.append(
            SegmentEntry(
                index=index,
                file=file,
                sha256=art.meta["sha256"],
                first_layer=segs[0].first_layer,
                last_layer=segs[-1].last_layer,
                input=TensorSpec.model_validate(art.meta["input"]),
                output=TensorSpec.model_validate(art.meta["output"]),
                params=sum(s.params for s in segs),
                macs=sum(s.macs for s in segs),
            )
        )
        if progress:
            progress(index + 1, total)
    whole_file = whole_sha = None
    if include_whole:
        art = exporter.artifact(0, graph.num_segments)
        whole_file, whole_sha = "whole.tflite", art.meta["sha256"]
        _copy(art.path, out_dir / whole_file)
        if progress:
            progress(total, total)
    manifest = BundleManifest(
        model=name,
        quant=quant,  # type: ignore[arg-type]
        input=TensorSpec(shape=list(graph.input_shape), dtype="float32"),
        output=TensorSpec(shape=list(graph.segments[-1].output_shape), dtype="float32"),
        segments=entries,
        whole_file=whole_file,
        whole_sha256=whole_sha,
        cut_layers=[e.last_layer for e in entries[:-1]],
        converter=exporter.version,
    )
    write_manifest(out_dir, manifest)
    return manifest
