"""The profiling job on LocalDevice: rows per segment, resume, force, backward pass, power-model energy."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.devices.local import LocalDevice
from harness.profiling import ProfileSettings, profile_device
from harness.specs import load_device
from models.bundle import read_manifest
from models.profile_rows import read_profile, segment_rows, whole_model_row

FAST = ProfileSettings(runs=5, warmup_runs=1, warmup_min_secs=0.0, backward=False)


def test_local_job_writes_one_row_per_segment_and_resumes(
    bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    bundle = bundle_factory("small_cnn", "int8")
    manifest = read_manifest(bundle)
    device = LocalDevice("generic-phone")
    first = profile_device(device, bundle, FAST, out_root=tmp_path)
    frame = read_profile(first.csv_path)
    segments = segment_rows(frame)
    assert first.csv_path == tmp_path / "local" / "small_cnn-int8.csv"
    assert list(segments["segment"]) == list(range(manifest.num_segments))
    assert list(segments["first_layer"]) == [s.first_layer for s in manifest.segments]
    assert list(segments["artifact_sha256"]) == [s.sha256 for s in manifest.segments]
    assert whole_model_row(frame) is not None
    assert (frame["runs"] >= 5).all()
    assert (frame["latency_ms_p10"] <= frame["latency_ms_median"]).all()
    assert (frame["latency_ms_median"] <= frame["latency_ms_p90"]).all()
    # energy = the profile's compute power x median latency
    power = load_device("generic-phone").compute_power_mw(1)
    assert np.allclose(frame["power_mw"], power)
    assert (frame["energy_mj"] > 0).all()

    again = profile_device(device, bundle, FAST, out_root=tmp_path)
    assert again.measured == []
    assert len(again.skipped) == manifest.num_segments + 1
    assert len(read_profile(first.csv_path)) == len(frame)

    forced = profile_device(
        device,
        bundle,
        ProfileSettings(runs=5, warmup_min_secs=0.0, backward=False, force=True),
        out_root=tmp_path,
    )
    assert len(forced.measured) == manifest.num_segments + 1
    more_threads = profile_device(
        device,
        bundle,
        ProfileSettings(runs=5, warmup_min_secs=0.0, threads=2, backward=False),
        out_root=tmp_path,
    )
    assert len(more_threads.measured) == manifest.num_segments + 1  # other settings: not a resume hit


def test_interrupted_local_job_resumes_where_it_stopped(
    bundle_factory: Callable[..., Path], tmp_path: Path
) -> None:
    from harness.profiling import JobListener

    bundle = bundle_factory("small_cnn", "fp32")
    total = read_manifest(bundle).num_segments + 1

    class StopAfterTwo(JobListener):
        def unit_done(self, device: str, row: object, measured: bool) -> None:
            self.count = getattr(self, "count", 0) + 1
            if self.count == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        profile_device(LocalDevice(), bundle, FAST, out_root=tmp_path, listener=StopAfterTwo())
    resumed = profile_device(LocalDevice(), bundle, FAST, out_root=tmp_path)
    assert resumed.skipped == [0, 1]
    assert len(resumed.measured) == total - 2
    assert len(read_profile(resumed.csv_path)) == total


def test_backward_pass_is_measured_per_segment(bundle_factory: Callable[..., Path], tmp_path: Path) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    result = profile_device(
        LocalDevice(),
        bundle,
        ProfileSettings(runs=3, warmup_min_secs=0.0, backward=True, backward_runs=2, whole_model=False),
        out_root=tmp_path,
    )
    frame = segment_rows(read_profile(result.csv_path))
    assert frame["backward_ms"].notna().all()
    assert (frame["backward_ms"] > 0).all()
    assert (frame["backward_energy_mj"] > 0).all()
    assert frame["param_bytes"].sum() > 0


def test_local_run_chain_matches_the_whole_model(bundle_factory: Callable[..., Path]) -> None:
    from models.runtime import SegmentChain, SegmentRunner

    bundle = bundle_factory("small_cnn", "fp32")
    manifest = read_manifest(bundle)
    device = LocalDevice()
    x = np.random.default_rng(1).standard_normal(manifest.input.shape).astype(np.float32)
    output, segment_ms, energy_mj = device.run_chain(bundle, list(range(manifest.num_segments)), x)
    assert manifest.whole_file is not None
    whole = SegmentRunner(bundle / manifest.whole_file).run(x)
    np.testing.assert_allclose(output, whole, rtol=1e-5, atol=1e-5)
    assert len(segment_ms) == manifest.num_segments
    assert energy_mj == pytest.approx(sum(device.spec.compute_energy_mj(ms) for ms in segment_ms))
    assert not math.isnan(energy_mj)
    assert len(SegmentChain(bundle)) == manifest.num_segments
