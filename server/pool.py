"""Interpreter pools: each served model holds ``pool_size`` copies of its segment chain.

LiteRT interpreters are not thread-safe, so each chain serves one inference at a time; a model's
chains sit in a free list and a thread pool of the same size runs inferences off the event loop (LiteRT
releases the GIL while it computes, so the chains really run in parallel). Admission is bounded: at most
``pool_size + max_queue`` requests per model are outstanding; the next one gets :class:`QueueFullError`
(503 with ``Retry-After``). The pool also keeps the busy intervals of the last window for ``/v1/load``.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmark import CHAIN_IDLE_S, LoopSettings, chain_medians, run_loop
from models.bundle import BundleManifest
from models.profile_rows import ProfileRow, Unit, measured_row, units_of
from models.runtime import ChainResult, SegmentChain, SegmentRunner, backend_name, quantize

__all__ = ["ModelPool", "PoolRun", "QueueFullError", "TensorMismatchError"]


class QueueFullError(Exception):
    """Too many requests are outstanding for this model; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TensorMismatchError(ValueError):
    """The tensor's shape or dtype is not what the segment takes (the server answers 422)."""


@dataclass
class PoolRun:
    """One inference: the output tensor and where the time went (ms)."""

    output: np.ndarray
    queue_ms: float  # waiting for a free chain
    compute_ms: float  # running the segments, requantization included
    segment_ms: list[float]


class ModelPool:
    """``pool_size`` chains of one bundle, a thread pool to run them, and load accounting."""

    def __init__(
        self,
        name: str,
        bundle_dir: Path,
        manifest: BundleManifest,
        *,
        pool_size: int = 1,
        threads: int = 1,
        max_queue: int = 64,
        window_s: float = 10.0,
    ):
        self.name = name
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.pool_size = pool_size
        self.threads = threads
        self.max_queue = max_queue
        self.window_s = window_s
        self.chains = [
            SegmentChain(bundle_dir, num_threads=threads, manifest=manifest) for _ in range(pool_size)
        ]
        self._free: queue.SimpleQueue[SegmentChain] = queue.SimpleQueue()
        for chain in self.chains:
            self._free.put(chain)
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"jointdnn-{name}")
        self._lock = threading.Lock()
        self._outstanding = 0  # admitted and not finished (running + waiting)
        self._running: dict[int, float] = {}  # thread id -> perf_counter at start
        self._busy: deque[tuple[float, float]] = deque()  # (end, duration) in perf_counter seconds
        self._recent_ms: deque[float] = deque(maxlen=64)  # compute times of recent inferences
        self._whole: SegmentRunner | None = None  # loaded on the first profile request
        self._whole_lock = threading.Lock()

    # -- shape checks -------------------------------------------------------------------------------
    @property
    def num_segments(self) -> int:
        return len(self.chains[0])

    def coerce_input(self, x: np.ndarray, start: int) -> np.ndarray:
        """Check ``x`` against segment ``start``'s input; quantize float32 into an int8 input."""
        runner = self.chains[0].runners[start]
        want_shape, want_dtype = runner.input_shape, runner.input_dtype
        if tuple(x.shape) != want_shape:
            raise TensorMismatchError(
                f"segment {start} of {self.name} takes shape {list(want_shape)}, got {list(x.shape)}"
            )
        if x.dtype == want_dtype:
            return x
        if runner.input_quant is not None and x.dtype == np.float32:
            return quantize(x, runner.input_quant, want_dtype)
        accepted = want_dtype.name + (" (or float32, quantized by the server)" if runner.input_quant else "")
        raise TensorMismatchError(
            f"segment {start} of {self.name} takes dtype {accepted}, got {x.dtype.name}"
        )

    # -- inference ----------------------------------------------------------------------------------
    async def infer(self, x: np.ndarray, start: int, stop: int, *, dequantize: bool = False) -> PoolRun:
        """Run segments ``start..stop-1`` on a free chain, in the pool's threads."""
        future = self._admit(self._infer_on_chain, x, start, stop, dequantize, time.perf_counter())
        return await asyncio.wrap_future(future)

    def _admit(self, fn: Any, *args: Any) -> Future[Any]:
        with self._lock:
            if self._outstanding >= self.pool_size + self.max_queue:
                raise QueueFullError(
                    f"{self.name}: {self._outstanding} requests outstanding (limit "
                    f"{self.pool_size + self.max_queue}); retry later",
                    retry_after_s=self._retry_after_locked(),
                )
            self._outstanding += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Future[Any]) -> None:
        with self._lock:
            self._outstanding -= 1

    def _retry_after_locked(self) -> int:
        mean_s = (sum(self._recent_ms) / len(self._recent_ms) / 1e3) if self._recent_ms else 0.1
        return max(1, math.ceil(self._outstanding * mean_s / self.pool_size))

    @contextmanager
    def _checkout(self) -> Iterator[tuple[SegmentChain, float]]:
        """Take a free chain (blocking) and account its busy time; yields (chain, start perf_counter)."""
        chain = self._free.get()
        began = time.perf_counter()
        ident = threading.get_ident()
        with self._lock:
            self._running[ident] = began
        try:
            yield chain, began
        finally:
            ended = time.perf_counter()
            self._free.put(chain)
            with self._lock:
                del self._running[ident]
                self._busy.append((ended, ended - began))
                self._trim_locked(ended)

    def _infer_on_chain(
        self, x: np.ndarray, start: int, stop: int, dequantize: bool, submitted: float
    ) -> PoolRun:
        with self._checkout() as (chain, began):
            output, result = _serve_on(chain, x, start, stop, dequantize)
            compute_ms = (time.perf_counter() - began) * 1e3
        with self._lock:
            self._recent_ms.append(compute_ms)
        return PoolRun(
            output=output,
            queue_ms=(began - submitted) * 1e3,
            compute_ms=compute_ms,
            segment_ms=result.segment_ms,
        )

    # -- load ---------------------------------------------------------------------------------------
    def _trim_locked(self, now: float) -> None:
        while self._busy and self._busy[0][0] < now - self.window_s:
            self._busy.popleft()

    def load(self) -> dict[str, Any]:
        """In-flight / queued counts and the busy fraction of the chains over the last window."""
        now = time.perf_counter()
        with self._lock:
            self._trim_locked(now)
            window_start = now - self.window_s
            busy_s = sum(min(d, end - window_start) for end, d in self._busy)
            busy_s += sum(now - max(began, window_start) for began in self._running.values())
            running = len(self._running)
            outstanding = self._outstanding
            recent = sorted(self._recent_ms)
        return {
            "in_flight": running,
            "queued": max(0, outstanding - running),
            "pool_size": self.pool_size,
            "utilization": min(1.0, busy_s / (self.window_s * self.pool_size)),
            "recent_compute_ms_median": recent[len(recent) // 2] if recent else None,
        }

    # -- profiling ----------------------------------------------------------------------------------
    async def profile(self, runs: int, *, device: str) -> list[ProfileRow]:
        """Time every segment (and the whole model, if the bundle has it) ``runs`` times on one chain."""
        future = self._admit(self._profile_on_chain, runs, device)
        rows: list[ProfileRow] = await asyncio.wrap_future(future)
        return rows

    def _profile_on_chain(self, runs: int, device: str) -> list[ProfileRow]:
        units = units_of(self.manifest)  # the segments in order, then the whole model if the bundle has it
        segments, whole_units = units[: self.num_segments], units[self.num_segments :]
        # one warm-up run: the first invoke allocates
        settings = LoopSettings(runs=runs, warmup_runs=1, warmup_min_secs=0.0)

        def row(runner: SegmentRunner, unit: Unit) -> ProfileRow:
            x = runner.random_input(np.random.default_rng(0))
            stats = run_loop(lambda: runner.run(x), settings).stats(settings)
            return measured_row(
                self.manifest, unit, stats, threads=self.threads, device=device, runtime=backend_name()
            )

        with self._checkout() as (chain, _began):
            rows = [row(runner, unit) for unit, runner in zip(segments, chain.runners, strict=True)]
            _in_chain_context(chain, rows, runs)
            whole = whole_units[0] if whole_units else None  # segment -1, when the bundle has whole.tflite
            if whole is not None and (self.bundle_dir / whole.file).is_file():
                with self._whole_lock:  # one whole-model interpreter, one profiling thread at a time
                    if self._whole is None:
                        self._whole = SegmentRunner(self.bundle_dir / whole.file, num_threads=self.threads)
                    rows.append(row(self._whole, whole))
            return rows

    def close(self) -> None:
        """Stop the threads (waiting for running inferences)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _serve_on(
    chain: SegmentChain, x: np.ndarray, start: int, stop: int, dequantize: bool
) -> tuple[np.ndarray, ChainResult]:
    """What one request computes on a chain (timed by the caller as the request's ``compute`` time)."""
    result = chain.run(x, start, stop)
    output = chain.finish_output(result.output, stop) if dequantize else result.output
    return output, result


CHAIN_METHOD = (
    "server /profile: {runs} timed passes of the whole chain through the serving path after one "
    "warm-up, each after {idle_ms:.0f} ms idle like a request; chain_ms_median = hand-over + invoke of "
    "the segment in a pass (medians scaled to the median pass); overhead_ms = median of (pass compute "
    "time - sum of its segments' times), the fixed cost of one request"
)


def _in_chain_context(chain: SegmentChain, rows: list[ProfileRow], runs: int) -> None:
    """Fill the segment rows' chain columns: ``runs`` passes of the whole chain as a request runs it.

    Each pass is one request's compute (:func:`_serve_on`, timed like ``_infer_on_chain``) after the
    server sat idle for :data:`~models.benchmark.CHAIN_IDLE_S`: every segment runs once, after its
    predecessor, with the hand-over between them, so its weights and code are as cold as when it
    serves a request. ``overhead_ms`` (the same on every segment row: a request may
    start at any of them) is what a request costs beyond its segments' chain times.
    """
    n = len(chain)
    x = chain.runners[0].random_input(np.random.default_rng(0))
    passes: list[list[float]] = []  # (runs, n) hand-over + invoke per segment, ms
    fixed: list[float] = []  # per pass, ms
    for attempt in range(runs + 1):
        time.sleep(CHAIN_IDLE_S)  # a request finds the server idle (see models.benchmark.CHAIN_IDLE_S)
        began = time.perf_counter()
        _output, result = _serve_on(chain, x, 0, n, False)
        compute_ms = (time.perf_counter() - began) * 1e3
        if attempt:  # the first pass is a warm-up
            segment = [s + h for s, h in zip(result.segment_ms, result.handover_ms, strict=True)]
            passes.append(segment)
            fixed.append(max(0.0, compute_ms - sum(segment)))
    chain_ms = chain_medians(np.asarray(passes))  # (n,)
    overhead_ms = float(np.median(fixed))
    for row in rows:
        if 0 <= row.segment < n:
            row.chain_ms_median = float(chain_ms[row.segment])
            row.overhead_ms = overhead_ms
            row.overhead_method = CHAIN_METHOD.format(runs=runs, idle_ms=CHAIN_IDLE_S * 1e3)
