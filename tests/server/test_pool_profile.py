"""The pool's /profile: segments timed alone and in chain context, and the fixed cost of a request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from models.bundle import read_manifest
from server.pool import ModelPool


def test_profile_rows_carry_chain_times_and_the_request_overhead(bundle_factory: Callable[..., Path]) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    manifest = read_manifest(bundle)
    pool = ModelPool("small_cnn", bundle, manifest)
    try:
        rows = asyncio.run(pool.profile(3, device="cloud:test"))
    finally:
        pool.close()
    segments = [r for r in rows if r.segment >= 0]
    assert [r.segment for r in segments] == list(range(manifest.num_segments))
    for row in segments:
        assert row.chain_ms_median > 0 and row.latency_ms_median > 0
        assert row.overhead_ms == pytest.approx(segments[0].overhead_ms) and row.overhead_ms >= 0
        assert row.overhead_method.startswith("server /profile: 3 timed passes of the whole chain")
    whole = [r for r in rows if r.segment < 0]
    assert all(r.overhead_method == "" for r in whole)  # the whole model is not a stage of a schedule
