"""Run ``.tflite`` segments and chains of them on LiteRT, timing each segment.

This module imports without TensorFlow: the server and the devices use it. The interpreter comes from
``ai_edge_litert`` (LiteRT); only when LiteRT is absent do we fall back to ``tflite_runtime`` (devices
that only ship it) and then to ``tf.lite`` (which drags TensorFlow in).

Interpreters are not thread-safe: one :class:`SegmentRunner` serves one thread at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmark import random_tensor
from models.bundle import BundleManifest, QuantParams, TensorSpec, read_manifest
from models.errors import BackendError, BundleError
from models.heap import keep_buffers_on_heap

__all__ = [
    "ChainResult",
    "SegmentChain",
    "SegmentRunner",
    "backend_name",
    "convert_tensor",
    "dequantize",
    "hand_over",
    "interpreter_class",
    "quantize",
    "requantize",
    "to_float",
]


@cache
def _resolve_interpreter() -> tuple[type, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tf.lite"
    except ImportError:
        raise BackendError(
            "no TFLite interpreter found: install ai-edge-litert (`pip install ai-edge-litert`)"
        ) from None


def interpreter_class() -> type:
    """The TFLite ``Interpreter`` class to use (LiteRT first)."""
    return _resolve_interpreter()[0]


def backend_name() -> str:
    """``litert``, ``tflite_runtime`` or ``tf.lite``: which interpreter :func:`interpreter_class` gives."""
    return _resolve_interpreter()[1]


def quantize(x: np.ndarray, params: QuantParams, dtype: np.dtype[Any] | type = np.int8) -> np.ndarray:
    """Float -> integer: round to nearest and clamp to the dtype range, as TFLite's quantize op does."""
    info = np.iinfo(dtype)
    q = np.round(x.astype(np.float32) / np.float32(params.scale)) + params.zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integer -> float32: scale * (q - zero_point)."""
    return (np.float32(params.scale) * (q.astype(np.float32) - np.float32(params.zero_point))).astype(
        np.float32
    )


def requantize(q: np.ndarray, src: QuantParams, dst: QuantParams) -> np.ndarray:
    """Move an int8 tensor from one (scale, zero_point) to another; a no-op copy when they agree.

    An 8-bit tensor goes through a 256-entry table of ``quantize(dequantize(v))`` (bit-identical, and
    one gather instead of four float passes over a 4x larger temporary: MobileNetV2's 112x112x32
    hand-over ~10x faster); wider integers take the float path.
    """
    if src.scale == dst.scale and src.zero_point == dst.zero_point:
        return q
    if q.dtype.itemsize == 1:
        table = _requantize_table(src.scale, src.zero_point, dst.scale, dst.zero_point, q.dtype.str)
        return np.take(table, q.view(np.uint8))  # take: ~2.5x faster than table[indices]
    return quantize(dequantize(q, src), dst, q.dtype)


@cache
def _requantize_table(
    src_scale: float, src_zero: int, dst_scale: float, dst_zero: int, dtype: str
) -> np.ndarray:
    """``table[b]`` = the requantized value of the 8-bit value whose bit pattern is ``b`` (256,)."""
    values = np.arange(256, dtype=np.uint8).view(np.dtype(dtype))  # every value, by bit pattern
    src = QuantParams(scale=src_scale, zero_point=src_zero)
    dst = QuantParams(scale=dst_scale, zero_point=dst_zero)
    table = quantize(dequantize(values, src), dst, values.dtype)
    table.flags.writeable = False
    return table


def to_float(y: np.ndarray, quant: QuantParams | None) -> np.ndarray:
    """A tensor as float32: dequantized when it is an integer tensor with quantization parameters."""
    if quant is not None and np.issubdtype(y.dtype, np.integer):
        return dequantize(y, quant)
    return y.astype(np.float32, copy=False)


def convert_tensor(
    x: np.ndarray, source: QuantParams | None, dtype: np.dtype[Any] | str, target: QuantParams | None
) -> np.ndarray:
    """Move a tensor from its producer's quantization (``source``; None = float) to what a consumer of
    ``dtype`` / ``target`` takes: requantize int8 → int8, dequantize, quantize or cast as needed.

    The one place where tensors cross segment boundaries: chains, the server, the end-to-end runner
    and the emulated device's chain runner all go through it.
    """
    want = np.dtype(dtype)
    if source is not None and np.issubdtype(x.dtype, np.integer):
        if x.dtype == want and target is not None:
            return requantize(x, source, target)
        x = dequantize(x, source)
    if target is not None and np.issubdtype(want, np.integer):
        return quantize(x, target, want)
    return x.astype(want, copy=False)


def _interpreter_quant(detail: dict[str, Any]) -> QuantParams | None:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        return None
    return QuantParams(scale=float(scale), zero_point=int(zero_point))


class SegmentRunner:
    """One ``.tflite`` model (a segment or the whole model) on one interpreter, single input/output."""

    def __init__(self, model: Path | bytes, *, num_threads: int = 1):
        keep_buffers_on_heap()  # per-run outputs would otherwise fault their pages in every time
        cls = interpreter_class()
        try:
            if isinstance(model, bytes):
                self._interpreter = cls(model_content=model, num_threads=num_threads)
            else:
                self._interpreter = cls(model_path=str(model), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            name = "<bytes>" if isinstance(model, bytes) else str(model)
            raise BackendError(f"cannot load TFLite model {name}: {exc}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self._input = inputs[0]
        self._output = outputs[0]
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in self._input["shape"])
        self.output_shape: tuple[int, ...] = tuple(int(d) for d in self._output["shape"])
        self.input_dtype: np.dtype[Any] = np.dtype(self._input["dtype"])
        self.output_dtype: np.dtype[Any] = np.dtype(self._output["dtype"])
        self.input_quant = _interpreter_quant(self._input)
        self.output_quant = _interpreter_quant(self._output)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run one inference; ``x`` must already have the input's shape and dtype.

        Returns the interpreter's own copy of the output (``get_tensor`` copies), so no further copy.
        """
        if x.dtype != self.input_dtype or tuple(x.shape) != self.input_shape:
            raise BackendError(
                f"input {x.dtype}{list(x.shape)} does not match the model's {self.input_dtype}{list(self.input_shape)}"
            )
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        output: np.ndarray = self._interpreter.get_tensor(self._output["index"])
        return output

    def resize_batch(self, batch: int) -> None:
        """Resize the input's first (batch) dimension to ``batch`` and re-plan the interpreter.

        A no-op when it already has that batch. Models whose graph fixes the batch dimension (a reshape
        to a constant shape) fail here (:class:`BackendError`) or in the next :meth:`run` (``RuntimeError``).
        """
        if self.input_shape[:1] == (batch,):
            return
        shape = [batch, *self.input_shape[1:]]
        try:
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            self._interpreter.resize_tensor_input(self._input["index"], list(self.input_shape))
            self._interpreter.allocate_tensors()  # back to the shape it had, so it still runs
            raise BackendError(f"cannot resize the input to {shape}: {exc}") from None
        self._output = self._interpreter.get_output_details()[0]
        self.input_shape = tuple(shape)
        self.output_shape = tuple(int(d) for d in self._output["shape"])

    def random_input(self, rng: np.random.Generator) -> np.ndarray:
        """A random input of the right shape and dtype (for benchmarking)."""
        return random_tensor(self.input_shape, self.input_dtype, rng)


@dataclass
class ChainResult:
    """Output of a chain run plus the wall time of every segment that ran (ms, same order)."""

    output: np.ndarray
    segment_ms: list[float] = field(default_factory=list)
    # hand-over (requantization) into each segment that ran, ms; 0 for the first (same order)
    handover_ms: list[float] = field(default_factory=list)
    # CPU time of the calling thread in each segment's invoke, ms (all of it with one interpreter thread)
    segment_cpu_ms: list[float] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return float(sum(self.segment_ms))


def _check_spec(
    path: Path, side: str, spec: TensorSpec, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> None:
    """The loaded model's tensor must be the one its manifest entry describes (else the bundle is refused)."""
    if list(shape) != list(spec.shape) or dtype != np.dtype(spec.dtype):
        raise BundleError(
            f"{path}: its {side} is {list(shape)} {dtype.name} but the manifest says {spec.shape} {spec.dtype}; "
            "the bundle was modified: re-export it with `jointdnn export`"
        )


class SegmentChain:
    """A bundle's segments loaded as interpreters; runs any contiguous range ``[start, stop)``.

    Tensors between segments are in the segments' own dtypes (int8 for int8 bundles). Use
    :meth:`prepare_input` / :meth:`finish_output` to go from / to float at the ends of the model.
    """

    def __init__(self, bundle_dir: Path, *, num_threads: int = 1, manifest: BundleManifest | None = None):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest or read_manifest(self.bundle_dir, verify_hashes=True)
        self.num_threads = num_threads
        self.runners = [
            SegmentRunner(self.bundle_dir / seg.file, num_threads=num_threads)
            for seg in self.manifest.segments
        ]
        for seg, runner in zip(self.manifest.segments, self.runners, strict=True):
            _check_spec(
                self.bundle_dir / seg.file, "input", seg.input, runner.input_shape, runner.input_dtype
            )
            _check_spec(
                self.bundle_dir / seg.file, "output", seg.output, runner.output_shape, runner.output_dtype
            )

    def __len__(self) -> int:
        return len(self.runners)

    def input_spec(self, start: int) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """Shape and dtype that segment ``start`` expects."""
        runner = self.runners[start]
        return runner.input_shape, runner.input_dtype

    def prepare_input(self, x: np.ndarray, start: int = 0) -> np.ndarray:
        """Convert a float tensor to what segment ``start`` takes (quantize for int8)."""
        runner = self.runners[start]
        return convert_tensor(x, None, runner.input_dtype, runner.input_quant)

    def finish_output(self, y: np.ndarray, stop: int | None = None) -> np.ndarray:
        """Convert the output of segment ``stop - 1`` to float32 (dequantize for int8)."""
        runner = self.runners[(stop or len(self.runners)) - 1]
        return to_float(y, runner.output_quant)

    def run(self, x: np.ndarray, start: int = 0, stop: int | None = None) -> ChainResult:
        """Run segments ``start .. stop-1`` on ``x`` (already in segment ``start``'s input dtype)."""
        stop = len(self.runners) if stop is None else stop
        if not 0 <= start < stop <= len(self.runners):
            raise BackendError(f"segment range [{start}, {stop}) is outside 0..{len(self.runners)}")
        timings: list[float] = []
        handovers: list[float] = []
        cpu: list[float] = []
        current = x
        for k in range(start, stop):
            runner = self.runners[k]
            t0 = time.perf_counter()
            if k > start:
                current = hand_over(current, self.runners[k - 1], runner)
            t1, c1 = time.perf_counter(), time.thread_time()
            current = runner.run(current)
            timings.append((time.perf_counter() - t1) * 1e3)
            cpu.append((time.thread_time() - c1) * 1e3)
            handovers.append((t1 - t0) * 1e3)
        return ChainResult(output=current, segment_ms=timings, handover_ms=handovers, segment_cpu_ms=cpu)

    def run_float(self, x: np.ndarray, start: int = 0, stop: int | None = None) -> ChainResult:
        """Float in, float out: quantize the input, run the range, dequantize the output."""
        result = self.run(self.prepare_input(x, start), start, stop)
        result.output = self.finish_output(result.output, stop)
        return result


def hand_over(y: np.ndarray, producer: SegmentRunner, consumer: SegmentRunner) -> np.ndarray:
    """Hand a producer's output to the next segment, requantizing if their int8 parameters differ."""
    return convert_tensor(y, producer.output_quant, consumer.input_dtype, consumer.input_quant)


def run_chain_float(chain: SegmentChain, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Convenience for tests: run the whole chain on several float inputs."""
    return [chain.run_float(x).output for x in inputs]
