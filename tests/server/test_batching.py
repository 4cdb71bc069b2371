"""Dynamic batching: batches form under concurrency, answers equal the unbatched chain, segments that fix
the batch dimension are found and run unbatched, and a lone request never waits for a window."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from models.bundle import read_manifest
from models.runtime import SegmentChain, SegmentRunner
from server.background import BackgroundServer
from server.client import CloudClient
from server.pool import ModelPool, PoolRun, can_batch
from server.settings import Settings

MODELS = ("small_cnn-fp32", "small_cnn-int8")


def _pool(root: Path, name: str, **options: object) -> ModelPool:
    path = root / name
    return ModelPool(name, path, read_manifest(path), batching=True, **options)  # type: ignore[arg-type]


def _concurrently(
    pool: ModelPool, xs: list[np.ndarray], start: int, stop: int | None = None
) -> list[PoolRun]:
    """Submit every request at once on one event loop and wait for all answers."""

    async def all_at_once() -> list[PoolRun]:
        runs = asyncio.gather(*(pool.infer(x, start, stop or pool.num_segments) for x in xs))
        return await asyncio.wait_for(runs, timeout=60)

    return asyncio.run(all_at_once())


def _heads(chain: SegmentChain, cut: int, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = [
        chain.prepare_input(rng.standard_normal((1, 32, 32, 3)).astype(np.float32)) for _ in range(count)
    ]
    return [chain.run(x, 0, cut).output if cut else x for x in inputs]


@pytest.mark.parametrize("name", MODELS)
def test_concurrent_requests_run_as_batches_with_the_unbatched_answers(
    served_root: Path, local_chains: dict[str, SegmentChain], name: str
) -> None:
    pool = _pool(served_root, name, pool_size=1, batch_window_ms=2.0, max_batch=4)
    try:
        chain = local_chains[name]
        cut = next(k for k in range(pool.num_segments) if k not in pool.unbatchable)
        end = next((k for k in pool.unbatchable if k > cut), pool.num_segments)  # a batchable range
        xs = _heads(chain, cut, 10)
        runs = _concurrently(pool, xs, cut, end)
        for x, run in zip(xs, runs, strict=True):
            np.testing.assert_array_equal(run.output, chain.run(x, cut, end).output)
        sizes = [run.batch_size for run in runs]
        assert max(sizes) > 1, sizes  # one chain, ten requests at once: they must have batched
        assert max(sizes) <= 4  # max_batch holds
        assert pool.load()["served"] == 10 and pool.load()["in_flight"] == 0
    finally:
        pool.close()


def test_a_segment_that_fixes_the_batch_dimension_cannot_batch(tmp_path: Path) -> None:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 2], tf.float32)])
    def flatten_to_one(x: tf.Tensor) -> tf.Tensor:
        return tf.reshape(x, [1, 32]) * 2.0  # a constant [1, n]: batch 1 is baked into the graph

    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 2], tf.float32)])
    def elementwise(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(x) + 1.0

    rng = np.random.default_rng(0)
    verdicts = {}
    for fn in (flatten_to_one, elementwise):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        path = tmp_path / f"{fn.__name__}.tflite"
        path.write_bytes(converter.convert())
        runner = SegmentRunner(path)
        verdicts[fn.__name__] = can_batch(runner, rng)
        assert runner.input_shape == (1, 4, 4, 2)  # left at batch 1, still runs
        runner.run(np.zeros((1, 4, 4, 2), np.float32))
    assert verdicts == {"flatten_to_one": False, "elementwise": True}


def test_small_cnn_segments_all_batch_and_a_fixed_segment_falls_back(
    served_root: Path, local_chains: dict[str, SegmentChain]
) -> None:
    name = "small_cnn-int8"
    pool = _pool(served_root, name, pool_size=1, batch_window_ms=2.0)
    try:
        assert pool.unbatchable == []  # every small_cnn segment resizes (its Flatten keeps a -1 batch)
        chain = local_chains[name]
        pool.unbatchable = [6]  # as if segment 6 fixed its batch: ranges through it run one by one
        xs = _heads(chain, 5, 6, seed=1)
        through = _concurrently(pool, xs, 5)
        assert {run.batch_size for run in through} == {1}
        for x, run in zip(xs, through, strict=True):
            np.testing.assert_array_equal(run.output, chain.run(x, 5).output)
    finally:
        pool.close()


def test_a_lone_request_does_not_wait_for_the_window(served_root: Path) -> None:
    pool = _pool(served_root, "small_cnn-int8", pool_size=2, batch_window_ms=2.0)
    try:
        x = np.zeros(pool.chains[0].runners[0].input_shape, np.float32)
        run = asyncio.run(pool.infer(pool.coerce_input(x, 0), 0, pool.num_segments))
        assert run.batch_size == 1 and run.queue_ms < 2.0  # no 2 ms window for it
    finally:
        pool.close()


@pytest.fixture(scope="module")
def batching_server(served_root: Path) -> Iterator[BackgroundServer]:
    settings = Settings(bundle_dir=served_root, pool_size=1, batching=True, batch_window_ms=2.0)
    with BackgroundServer(settings) as server:
        yield server


def test_a_batching_server_answers_32_concurrent_requests_correctly(
    batching_server: BackgroundServer, local_chains: dict[str, SegmentChain]
) -> None:
    jobs = []
    rng = np.random.default_rng(7)
    for i in range(32):
        name = MODELS[i % 2]
        chain = local_chains[name]
        cut = (1, 3, 5, 8)[(i // 2) % 4]
        head = chain.run(
            chain.prepare_input(rng.standard_normal((1, 32, 32, 3)).astype(np.float32)), 0, cut
        ).output
        jobs.append((name, cut, head, chain.run(head, cut).output))
    with CloudClient(batching_server.base_url) as client, ThreadPoolExecutor(16) as callers:
        got = list(callers.map(lambda job: client.infer(job[0], job[2], from_segment=job[1]).output, jobs))
        load = client.load()
    for (name, cut, _head, expected), output in zip(jobs, got, strict=True):
        np.testing.assert_array_equal(output, expected, err_msg=f"{name} from segment {cut}")
    for name in MODELS:
        assert isinstance(load["models"][name]["unbatchable_segments"], list)
    assert load["served"] >= 32
