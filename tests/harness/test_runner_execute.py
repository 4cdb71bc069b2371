"""Executing schedules for real: LocalDevice segments, a live uvicorn server, a paced link."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.devices.local import LocalDevice
from harness.links import ShapedLink, measure_link
from harness.runner.cloud import start_local_server
from harness.runner.execute import ScheduleExecutor
from harness.runner.reference import check_output, reference_output
from harness.runner.session import LinkSession
from harness.runner.stages import split_stages, stages_from_label
from harness.specs import load_device, load_link
from models.bundle import read_manifest
from server.client import CloudClient


@pytest.fixture(scope="module", params=["int8", "fp32"])
def executor(
    request: pytest.FixtureRequest, bundle_factory: Callable[..., Path]
) -> Iterator[ScheduleExecutor]:
    bundle = bundle_factory("small_cnn", request.param)
    manifest = read_manifest(bundle)
    power = load_device("generic-phone")
    with ShapedLink(load_link("wifi"), shaping="pacing") as shaped:
        measured = measure_link(shaped, seconds=0.1, pings=2)
        url = start_local_server(shaped, bundle)
        with CloudClient(url) as client:
            session = LinkSession(shaped, measured, client, bundle.name)
            yield ScheduleExecutor(
                device=LocalDevice(power), bundle_dir=bundle, manifest=manifest, session=session, power=power
            )


def _input(executor: ScheduleExecutor) -> np.ndarray:
    return np.random.default_rng(1).random(executor.manifest.input.shape, dtype=np.float32)


def test_multi_hop_schedule_output_equals_whole_model(executor: ScheduleExecutor) -> None:
    n = executor.manifest.num_segments
    label = ("MCCM" * n)[: n - 1] + "C"  # mobile -> cloud -> mobile -> ... -> cloud, result downloaded
    x = _input(executor)
    result = executor.run(stages_from_label(label), x)
    check = check_output(
        executor.manifest, result.output, reference_output(executor.bundle_dir, executor.manifest, x)
    )
    assert check.matches, f"max abs err {check.max_abs_err} > {check.tolerance}"
    assert check.argmax_matches
    cloud_stages = sum(s.side == "cloud" for s in split_stages(stages_from_label(label)))
    assert result.requests == cloud_stages >= 2
    assert result.label == label


def test_breakdown_adds_up_and_respects_the_link(executor: ScheduleExecutor) -> None:
    n = executor.manifest.num_segments
    result = executor.run(stages_from_label("M" * (n // 2) + "C" * (n - n // 2)), _input(executor))
    parts = (
        result.device_compute_ms + result.upload_ms + result.queue_ms + result.server_ms + result.download_ms
    )
    assert result.latency_ms == pytest.approx(parts)
    assert result.device_compute_ms > 0 and result.server_ms > 0
    assert result.upload_ms > 0 and result.download_ms > 0
    # pacing: one request/response exchange lasts at least the link's RTT plus its bytes' serialisation
    link = executor.link
    floor = link.rtt_ms + link.upload_ms(result.up_bytes) + link.download_ms(result.down_bytes)
    assert result.transfer_ms >= floor * 0.999
    assert result.mobile_radio_mj > 0 and result.mobile_compute_mj > 0 and result.mobile_waiting_mj > 0
    assert result.mobile_energy_mj == pytest.approx(
        result.mobile_compute_mj + result.mobile_radio_mj + result.mobile_waiting_mj
    )


def test_mobile_only_uses_no_network(executor: ScheduleExecutor) -> None:
    n = executor.manifest.num_segments
    result = executor.run(["mobile"] * n, _input(executor))
    assert result.requests == 0 and result.transfer_ms == 0 and result.mobile_radio_mj == 0
    assert result.latency_ms == pytest.approx(result.device_compute_ms)


def test_jpeg_cloud_only_uploads_the_encoded_file(executor: ScheduleExecutor) -> None:
    from harness.runner.inputs import prepare_inputs

    photo = prepare_inputs(executor.bundle_dir, executor.manifest, quality=90)[0]
    n = executor.manifest.num_segments
    x, reference, jpeg = photo.for_codec("jpeg")
    assert jpeg is not None
    result = executor.run(["cloud"] * n, x, jpeg=jpeg)
    assert result.label == "C" * n + "+jpeg" and result.requests == 1
    assert result.up_bytes == len(jpeg)  # the upload is the encoded file's size
    assert result.server_ms > 0
    assert check_output(executor.manifest, result.output, reference).matches
    raw = executor.run(["cloud"] * n, photo.x)
    assert raw.up_bytes > len(jpeg) and raw.label == "C" * n
    # a schedule starting on the mobile uploads no input: the JPEG is ignored
    assert executor.run(["mobile"] + ["cloud"] * (n - 1), photo.x, jpeg=jpeg).label == "M" + "C" * (n - 1)
