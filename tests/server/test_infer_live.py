"""Inference against a real uvicorn on loopback: tails equal the whole model, concurrency, compression."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.runtime import SegmentChain, SegmentRunner
from server.client import CloudClient

CUTS = (1, 3, 5, 8)  # from_segment values: after block1, after block2's pool, ..., just the classifier


@pytest.mark.parametrize("cut", CUTS)
def test_fp32_tail_equals_whole_model(
    client: CloudClient,
    local_chains: dict[str, SegmentChain],
    whole_runners: dict[str, SegmentRunner],
    rng: np.random.Generator,
    cut: int,
) -> None:
    chain = local_chains["small_cnn-fp32"]
    x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
    head = chain.run(x, 0, cut).output  # what the phone would send
    result = client.infer("small_cnn-fp32", head, from_segment=cut)
    whole = whole_runners["small_cnn-fp32"].run(x)
    assert result.output.dtype == np.float32 and result.output.shape == whole.shape
    np.testing.assert_array_equal(result.output, chain.run(head, cut).output)  # same interpreters
    np.testing.assert_allclose(result.output, whole, rtol=1e-5, atol=1e-5)
    assert result.server_ms > 0 and result.queue_ms >= 0
    assert result.segment_ms == ()  # per-segment times only when asked for
    timed = client.infer("small_cnn-fp32", head, from_segment=cut, segment_timings=True)
    assert len(timed.segment_ms) == chain.manifest.num_segments - cut and all(
        ms > 0 for ms in timed.segment_ms
    )


@pytest.mark.parametrize("cut", CUTS)
def test_int8_tail_equals_local_chain_and_whole_model_within_quantization(
    client: CloudClient,
    local_chains: dict[str, SegmentChain],
    whole_runners: dict[str, SegmentRunner],
    rng: np.random.Generator,
    cut: int,
) -> None:
    chain = local_chains["small_cnn-int8"]
    x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
    head = chain.run(chain.prepare_input(x), 0, cut).output
    assert head.dtype == np.int8  # int8 crosses the network, 4x fewer bytes
    result = client.infer("small_cnn-int8", head, from_segment=cut)
    expected = chain.run(head, cut).output
    np.testing.assert_array_equal(result.output, expected)
    assert result.scale is not None and result.zero_point is not None
    as_float = client.infer("small_cnn-int8", head, from_segment=cut, dequantize=True).output
    np.testing.assert_array_equal(as_float, chain.finish_output(expected))
    whole = whole_runners["small_cnn-int8"]
    reference = chain.finish_output(whole.run(chain.prepare_input(x)))
    assert np.argmax(as_float) == np.argmax(reference)
    np.testing.assert_allclose(as_float, reference, atol=8 * result.scale)


def test_middle_range_and_float_input_to_int8_segment(
    client: CloudClient, local_chains: dict[str, SegmentChain], rng: np.random.Generator
) -> None:
    chain = local_chains["small_cnn-int8"]
    x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
    mid = client.infer("small_cnn-int8", x, from_segment=0, to_segment=4)  # server quantizes the float input
    np.testing.assert_array_equal(mid.output, chain.run(chain.prepare_input(x), 0, 4).output)


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compressed_bodies_give_the_same_answer(
    client: CloudClient, local_chains: dict[str, SegmentChain], rng: np.random.Generator, encoding: str
) -> None:
    chain = local_chains["small_cnn-fp32"]
    head = chain.run(rng.standard_normal((1, 32, 32, 3)).astype(np.float32), 0, 2).output  # post-ReLU zeros
    plain = client.infer("small_cnn-fp32", head, from_segment=2)
    packed = client.infer("small_cnn-fp32", head, from_segment=2, encoding=encoding)  # type: ignore[arg-type]
    np.testing.assert_array_equal(packed.output, plain.output)
    assert packed.request_bytes < plain.request_bytes


def test_32_concurrent_requests_are_all_correct(
    client: CloudClient, local_chains: dict[str, SegmentChain], rng: np.random.Generator
) -> None:
    jobs = []
    for i in range(32):
        name = ("small_cnn-fp32", "small_cnn-int8")[i % 2]
        chain = local_chains[name]
        cut = CUTS[i % len(CUTS)]
        x = chain.prepare_input(rng.standard_normal((1, 32, 32, 3)).astype(np.float32))
        head = chain.run(x, 0, cut).output
        jobs.append((name, cut, head, chain.run(head, cut).output))
    with ThreadPoolExecutor(max_workers=32) as executor:
        results = list(
            executor.map(lambda job: client.infer(job[0], job[2], from_segment=job[1]).output, jobs)
        )
    for (name, cut, _head, expected), got in zip(jobs, results, strict=True):
        assert got.dtype == expected.dtype, (name, cut)
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} from segment {cut}")


def test_request_bytes_are_the_tensor_plus_one_npy_header(client: CloudClient) -> None:
    x = np.zeros((1, 16, 16, 16), np.float32)
    result = client.infer("small_cnn-fp32", x, from_segment=2)
    assert result.request_bytes == x.nbytes + 80
    assert result.response_bytes == result.output.nbytes + 80
