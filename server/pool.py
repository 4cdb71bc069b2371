"""Interpreter pools: each served model holds ``pool_size`` copies of its segment chain.

LiteRT interpreters are not thread-safe, so each chain serves one inference at a time; a model's
chains sit in a free list and a thread pool of the same size runs inferences off the event loop (LiteRT
releases the GIL while it computes, so the chains really run in parallel). Admission is bounded: at most
``pool_size + max_queue`` requests per model are outstanding; the next one gets :class:`QueueFullError`
(503 with ``Retry-After``). A request that finds the pool idle, and is still alone after the event loop
has had two turns to start requests that arrived with it, runs on the loop's thread instead, saving
two thread hand-overs (~0.1-0.3 ms of latency at concurrency 1); requests arriving together go to the
threads, so a burst is never serialized on the loop. The pool also keeps the busy intervals of the last window for ``/v1/load``.

Dynamic batching (``batching=True``): concurrent requests for the same segment range wait up to
``batch_window_ms`` for each other and run as one batch through the chain's interpreters resized to the
batch (:meth:`SegmentRunner.resize_batch`); the output is split back per request. A request that arrives
while no other request of the model is outstanding runs at once (no window for a lone request), and
while every chain is busy requests simply accumulate until one frees. Segments whose graph fixes the
batch dimension (e.g. a reshape to a constant ``[1, n]``, which is how a Keras ``Flatten`` converts)
cannot batch: they are found at load time by running a batch of two against two single runs, and any
range that touches one runs request by request, as without batching.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmark import CHAIN_IDLE_S, LoopSettings, chain_medians, run_loop
from models.bundle import BundleManifest, QuantParams
from models.errors import BackendError
from models.profile_rows import ProfileRow, Unit, measured_row, units_of
from models.runtime import ChainResult, SegmentChain, SegmentRunner, backend_name, quantize

__all__ = ["ModelPool", "PoolRun", "QueueFullError", "TensorMismatchError", "can_batch"]


def can_batch(runner: SegmentRunner, rng: np.random.Generator) -> bool:
    """Whether ``runner`` runs a batch: a batch of two must give exactly the two single answers.

    A graph that fixes the batch dimension (a reshape to a constant ``[1, n]``) fails to resize, fails
    to run, or answers with the wrong shape. The runner is left at batch 1 (its original shape).
    """
    x = runner.random_input(rng)
    single = runner.run(x)
    try:
        runner.resize_batch(2)
        pair = runner.run(np.concatenate([x, x]))
        ok = pair.shape == (2, *single.shape[1:]) and all(np.array_equal(row[None], single) for row in pair)
    except (BackendError, RuntimeError, ValueError):
        ok = False
    try:
        runner.resize_batch(1)
    except BackendError:
        return False
    return ok


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
    compute_ms: float  # running the segments, requantization included (the whole batch's, if batched)
    segment_ms: list[float]
    batch_size: int = 1  # requests that ran together


@dataclass
class _Waiting:
    """One request waiting to join a batch (event-loop side)."""

    x: np.ndarray
    dequantize: bool
    submitted: float  # perf_counter
    future: asyncio.Future[PoolRun]


@dataclass
class _Forming:
    """Requests for one segment range gathering into a batch, and the timer that closes the window."""

    waiting: list[_Waiting] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


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
        batching: bool = False,
        batch_window_ms: float = 1.0,
        max_batch: int = 16,
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
        # last in, first out: a lone request gets the chain that ran last, its weights still in cache
        self._free: queue.LifoQueue[SegmentChain] = queue.LifoQueue()
        for chain in self.chains:
            self._free.put(chain)
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"jointdnn-{name}")
        self._lock = threading.Lock()
        self._outstanding = 0  # admitted and not finished (running + waiting)
        self._entered = 0  # requests inside infer() now, admitted or not (event loop only)
        self._running: dict[int, float] = {}  # thread id -> perf_counter at start
        self._busy: deque[tuple[float, float]] = deque()  # (end, duration) in perf_counter seconds
        self._recent_ms: deque[float] = deque(maxlen=64)  # compute times of recent inferences
        self._whole: SegmentRunner | None = None  # loaded on the first profile request
        self._whole_lock = threading.Lock()
        self._served = 0  # inferences answered since start
        # what each segment takes and gives, fixed at load (the runners' own shapes change with batching)
        first = self.chains[0].runners
        self._inputs = [(r.input_shape, r.input_dtype, r.input_quant) for r in first]
        self._output_quants = [r.output_quant for r in first]
        self.batching = batching
        self.batch_window_s = batch_window_ms / 1e3
        self.max_batch = max_batch
        self.unbatchable: list[int] = self._probe_batching() if batching else []
        self._forming: dict[tuple[int, int], _Forming] = {}  # (start, stop) -> requests gathering
        self._batches_running = 0  # batches handed to the threads and not finished (event loop only)

    # -- shape checks -------------------------------------------------------------------------------
    @property
    def num_segments(self) -> int:
        return len(self.chains[0])

    def output_quant(self, stop: int) -> QuantParams | None:
        """Quantization of the output of segment ``stop - 1`` (None for a float output)."""
        return self._output_quants[stop - 1]

    def coerce_input(self, x: np.ndarray, start: int) -> np.ndarray:
        """Check ``x`` against segment ``start``'s input; quantize float32 into an int8 input."""
        want_shape, want_dtype, input_quant = self._inputs[start]
        if x.shape != want_shape:
            raise TensorMismatchError(
                f"segment {start} of {self.name} takes shape {list(want_shape)}, got {list(x.shape)}"
            )
        if x.dtype == want_dtype:
            return x
        if input_quant is not None and x.dtype == np.float32:
            return quantize(x, input_quant, want_dtype)
        accepted = want_dtype.name + (" (or float32, quantized by the server)" if input_quant else "")
        raise TensorMismatchError(
            f"segment {start} of {self.name} takes dtype {accepted}, got {x.dtype.name}"
        )

    # -- inference ----------------------------------------------------------------------------------
    async def infer(self, x: np.ndarray, start: int, stop: int, *, dequantize: bool = False) -> PoolRun:
        """Run segments ``start..stop-1`` on a free chain, in the pool's threads (batched if enabled)."""
        submitted = time.perf_counter()
        self._entered += 1
        try:
            if self._outstanding == 0:
                # Idle: let the loop start any request that arrived with this one (two turns: read its
                # socket, run its task up to here), then, still alone, run it right here on the loop's
                # thread, without the two thread hand-overs. A burst thus goes to the threads.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                chain = self._take_free() if self._entered == 1 and self._outstanding == 0 else None
                if chain is not None:
                    self._reserve()
                    try:
                        return self._infer_on_chain(x, start, stop, dequantize, submitted, chain)
                    finally:
                        self._release()
            if self.batching and not any(start <= k < stop for k in self.unbatchable):
                return await self._join_batch(x, start, stop, dequantize)
            future = self._admit(self._infer_on_chain, x, start, stop, dequantize, submitted)
            return await asyncio.wrap_future(future)
        finally:
            self._entered -= 1

    def _take_free(self) -> SegmentChain | None:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return None

    def _reserve(self) -> None:
        """Count one more outstanding request, or refuse it (503) when the queue is full."""
        with self._lock:
            if self._outstanding >= self.pool_size + self.max_queue:
                raise QueueFullError(
                    f"{self.name}: {self._outstanding} requests outstanding (limit "
                    f"{self.pool_size + self.max_queue}); retry later",
                    retry_after_s=self._retry_after_locked(),
                )
            self._outstanding += 1

    def _admit(self, fn: Any, *args: Any) -> Future[Any]:
        self._reserve()
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Future[Any] | None = None, count: int = 1) -> None:
        with self._lock:
            self._outstanding -= count

    # -- dynamic batching (the scheduler runs on the event loop; only the batch itself runs in a thread) --
    def _probe_batching(self) -> list[int]:
        """Segments that cannot run a batch (probed on chain 0's runners, left at batch 1)."""
        rng = np.random.default_rng(0)
        return [k for k, runner in enumerate(self.chains[0].runners) if not can_batch(runner, rng)]

    async def _join_batch(self, x: np.ndarray, start: int, stop: int, dequantize: bool) -> PoolRun:
        self._reserve()
        loop = asyncio.get_running_loop()
        key = (start, stop)
        forming = self._forming.get(key)
        if forming is None:
            forming = self._forming[key] = _Forming()
        item = _Waiting(x, dequantize, time.perf_counter(), loop.create_future())
        forming.waiting.append(item)
        if self._batches_running < self.pool_size:
            if self._outstanding == 1 or len(forming.waiting) >= self.max_batch:  # lone request, or full
                self._dispatch(key)
            elif forming.timer is None:
                forming.timer = loop.call_later(self.batch_window_s, self._window_closed, key)
        return await item.future  # else a chain frees: _batch_done dispatches the oldest batch

    def _window_closed(self, key: tuple[int, int]) -> None:
        forming = self._forming.get(key)
        if forming is not None:
            forming.timer = None
            if self._batches_running < self.pool_size:
                self._dispatch(key)

    def _dispatch(self, key: tuple[int, int]) -> None:
        """Hand up to ``max_batch`` waiting requests of ``key`` to a thread as one batch."""
        forming = self._forming.pop(key)
        if forming.timer is not None:
            forming.timer.cancel()
        batch, rest = forming.waiting[: self.max_batch], forming.waiting[self.max_batch :]
        if rest:
            self._forming[key] = _Forming(rest)
        self._batches_running += 1
        future = asyncio.wrap_future(self._executor.submit(self._run_batch, batch, *key))
        future.add_done_callback(lambda done: self._batch_done(done, batch))

    def _batch_done(self, done: asyncio.Future[list[PoolRun]], batch: list[_Waiting]) -> None:
        self._batches_running -= 1
        self._release(None, len(batch))
        error = done.exception()
        for i, item in enumerate(batch):
            if item.future.done():  # the request was cancelled (client gone)
                continue
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(done.result()[i])
        if self._forming:  # a chain is free: the requests that waited longest go first
            oldest = min(self._forming, key=lambda key: self._forming[key].waiting[0].submitted)
            self._dispatch(oldest)

    def _run_batch(self, batch: list[_Waiting], start: int, stop: int) -> list[PoolRun]:
        """Run one batch on a free chain (in a pool thread) and split the output back per request."""
        with self._checkout() as (chain, began):
            for runner in chain.runners[start:stop]:
                runner.resize_batch(len(batch))
            x = batch[0].x if len(batch) == 1 else np.concatenate([item.x for item in batch])
            result = chain.run(x, start, stop)
            outputs = [result.output[i : i + 1] for i in range(len(batch))]
            outputs = [
                chain.finish_output(y, stop) if item.dequantize else y
                for y, item in zip(outputs, batch, strict=True)
            ]
            compute_ms = (time.perf_counter() - began) * 1e3
        with self._lock:
            self._recent_ms.append(compute_ms / len(batch))
            self._served += len(batch)
        return [
            PoolRun(output=y, queue_ms=(began - item.submitted) * 1e3, compute_ms=compute_ms,
                    segment_ms=result.segment_ms, batch_size=len(batch))
            for y, item in zip(outputs, batch, strict=True)
        ]  # fmt: skip

    def _retry_after_locked(self) -> int:
        mean_s = (sum(self._recent_ms) / len(self._recent_ms) / 1e3) if self._recent_ms else 0.1
        return max(1, math.ceil(self._outstanding * mean_s / self.pool_size))

    @contextmanager
    def _checkout(self, chain: SegmentChain | None = None) -> Iterator[tuple[SegmentChain, float]]:
        """Take a free chain (blocking; or ``chain``, already taken) and account its busy time; yields
        (chain, start perf_counter). The chain goes back to the free list at the end."""
        chain = chain or self._free.get()
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
        self, x: np.ndarray, start: int, stop: int, dequantize: bool, submitted: float,
        taken: SegmentChain | None = None,
    ) -> PoolRun:  # fmt: skip
        with self._checkout(taken) as (chain, began):
            if self.batching:  # a batch may have left the interpreters resized
                for runner in chain.runners[start:stop]:
                    runner.resize_batch(1)
            output, result = _serve_on(chain, x, start, stop, dequantize)
            compute_ms = (time.perf_counter() - began) * 1e3
        with self._lock:
            self._recent_ms.append(compute_ms)
            self._served += 1
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
            served = self._served
        return {
            "in_flight": running,
            "queued": max(0, outstanding - running),
            "pool_size": self.pool_size,
            "utilization": min(1.0, busy_s / (self.window_s * self.pool_size)),
            "recent_compute_ms_median": recent[len(recent) // 2] if recent else None,
            "served": served,
            "unbatchable_segments": list(self.unbatchable) if self.batching else None,
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
