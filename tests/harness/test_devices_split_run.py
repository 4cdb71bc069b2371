"""Split stages on an ADB device with the stock ``benchmark_model``, the chain-runner fallback, and the
error when neither is there; through the real adb server and an emulated device of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.devices.adb import BENCHMARK_REMOTE, CHAIN_RUNNER_REMOTE, AdbDevice
from harness.devices.split_run import SegmentCall, parse_stage_output, split_groups, stage_command
from harness.emulator import EmulatedDevice
from models.bundle import read_manifest
from models.errors import BenchmarkBinaryMissingError
from models.runtime import SegmentChain, SegmentRunner

OLD_BENCHMARK_MODEL = (  # a build from before the split-run flags: its usage has no such rows
    b"#!/system/bin/sh\n"
    b"echo 'usage: /data/local/tmp/benchmark_model <flags>'\n"
    b"echo 'Flags:'\n"
    b"echo '--graph=  string  optional  graph file name'\n"
    b"exit 1\n"
)


@pytest.fixture
def phone() -> Iterator[EmulatedDevice]:
    """A phone of its own: these tests remove and replace its binaries."""
    with EmulatedDevice("generic-phone") as device:
        yield device


def test_stage_command_quotes_arguments_and_escapes_colons_in_names() -> None:
    call = SegmentCall(3, "/d/seg 3.tflite", "serving_default_x:0", [1, 4, 4, 8], "/d/in.bin", "/d/out.bin")
    line = stage_command("/data/local/tmp/benchmark_model", [call], threads=2, warmup_runs=0)
    assert "'--graph=/d/seg 3.tflite'" in line
    assert "--input_layer_value_files=serving_default_x::0:/d/in.bin" in line
    assert "--num_runs=1 --warmup_runs=0 --min_secs=0 --warmup_min_secs=0" in line
    logs = parse_stage_output("@@jointdnn-segment:3\nINFO: a\n@@jointdnn-segment:4\nINFO: b\n", [3, 4])
    assert logs == {3: "INFO: a", 4: "INFO: b"}


def test_int8_chains_are_cut_where_a_hand_over_needs_requantizing(
    bundle_factory: Callable[..., Path],
) -> None:
    manifest = read_manifest(bundle_factory("small_cnn", "int8"))
    groups = split_groups(manifest, list(range(manifest.num_segments)))
    assert [k for group in groups for k in group] == list(range(manifest.num_segments))
    for group in groups[1:]:
        producer, consumer = manifest.segments[group[0] - 1].output, manifest.segments[group[0]].input
        assert producer.quant != consumer.quant


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_without_the_chain_runner_outputs_equal_the_whole_models(
    phone: EmulatedDevice, bundle_factory: Callable[..., Path], quant: str
) -> None:
    bundle = bundle_factory("small_cnn", quant)
    manifest = read_manifest(bundle)
    device = AdbDevice(phone.serial, power_spec=phone.spec)
    assert device.shell(["rm", CHAIN_RUNNER_REMOTE]).exit_code == 0
    assert device.split_runner() == "benchmark_model"
    whole = SegmentRunner(bundle / "whole.tflite")
    x = np.random.default_rng(11).standard_normal(manifest.input.shape).astype(np.float32)
    x_in = SegmentChain(bundle).prepare_input(x)  # int8 bundles take the quantized input
    run = device.run_chain(bundle, list(range(manifest.num_segments)), x_in, warmup_runs=0)
    expected = whole.run(x_in)
    if quant == "fp32":
        np.testing.assert_array_equal(run.output, expected)  # bit-identical, as the chain invariant says
    else:  # requantized hand-overs: within one int8 step of the whole model
        assert np.abs(run.output.astype(int) - expected.astype(int)).max() <= 2
    assert len(run.segment_ms) == manifest.num_segments and all(ms > 0 for ms in run.segment_ms)
    # a head then a tail on the device give the whole chain's output too
    head = device.run_chain(bundle, [0, 1], x_in, warmup_runs=0).output
    tail = device.run_chain(bundle, list(range(2, manifest.num_segments)), head, warmup_runs=0).output
    np.testing.assert_array_equal(tail, run.output)
    assert device.shell(["ls", f"{device.push_bundle(bundle).remote_dir}"]).stdout.count(".bin") == 0


def test_an_old_benchmark_model_falls_back_to_the_chain_runner_and_neither_is_a_clear_error(
    phone: EmulatedDevice, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory("small_cnn", "fp32")
    manifest = read_manifest(bundle)
    device = AdbDevice(phone.serial)
    device.push_file(OLD_BENCHMARK_MODEL, BENCHMARK_REMOTE, mode=0o755)
    assert device.split_runner() == "jointdnn_chain_runner"
    x = np.random.default_rng(2).standard_normal(manifest.input.shape).astype(np.float32)
    out = device.run_chain(bundle, list(range(manifest.num_segments)), x).output
    np.testing.assert_array_equal(out, SegmentRunner(bundle / "whole.tflite").run(x))
    assert device.shell(["rm", CHAIN_RUNNER_REMOTE]).exit_code == 0
    with pytest.raises(
        BenchmarkBinaryMissingError, match=r"lacks --input_layer_value_files.*Push a recent benchmark_model"
    ):
        AdbDevice(phone.serial).split_runner()
