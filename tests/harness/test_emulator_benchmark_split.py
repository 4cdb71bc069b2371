"""The emulated ``benchmark_model``'s split-run flags, as upstream implements them, through adb.

``--input_layer_value_files`` (raw bytes; a wrong size aborts with upstream's text), ``--output_filepath``
(raw bytes of every output, in output order) and ``--help`` (``tflite::Flags::Usage`` rows).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import adbutils
import numpy as np
import pytest

from harness.devices.split_run import input_tensor_name, supports_split_flags
from models.bundle import read_manifest
from models.runtime import SegmentRunner

REMOTE = "/data/local/tmp/split_flags"
BINARY = "/data/local/tmp/benchmark_model"


@pytest.fixture(scope="module")
def fp32_bundle(bundle_factory: Callable[..., Path]) -> Path:
    return bundle_factory("small_cnn", "fp32")


@pytest.fixture(scope="module")
def pushed(fp32_bundle: Path, adb_device: adbutils.AdbDevice) -> str:
    adb_device.shell2(["mkdir", "-p", REMOTE])
    adb_device.sync.push(fp32_bundle / "segment_001.tflite", f"{REMOTE}/seg1.tflite")
    return f"{REMOTE}/seg1.tflite"


def _run(adb_device: adbutils.AdbDevice, args: list[str]) -> adbutils.ShellReturn:
    return adb_device.shell2([BINARY, *args], v2=True, timeout=120)


def _input_flags(name: str, shape: list[int], path: str) -> list[str]:
    return [
        f"--input_layer={name}",
        f"--input_layer_shape={','.join(map(str, shape))}",
        f"--input_layer_value_files={name.replace(':', '::')}:{path}",
    ]


def test_a_wrong_size_input_file_aborts_with_upstreams_text(
    adb_device: adbutils.AdbDevice, pushed: str, fp32_bundle: Path
) -> None:
    segment = read_manifest(fp32_bundle).segments[1]
    name = input_tensor_name(str(fp32_bundle / segment.file), segment.sha256)
    short = f"{REMOTE}/short.bin"
    adb_device.sync.push(b"\0" * 10, short)
    result = _run(
        adb_device, [f"--graph={pushed}", "--num_runs=1", *_input_flags(name, segment.input.shape, short)]
    )
    assert result.returncode == 134  # std::abort()
    expected = f"FATAL: The size of {short} is 10 bytes. It should be {segment.input.nbytes} bytes."
    assert expected in result.stderr
    assert "Benchmarking failed" not in result.stderr  # FATAL aborts; no orderly failure message


def test_a_value_file_for_an_unlisted_input_layer_is_fatal(
    adb_device: adbutils.AdbDevice, pushed: str
) -> None:
    result = _run(adb_device, [f"--graph={pushed}", "--input_layer_value_files=x:/data/local/tmp/none.bin"])
    assert result.returncode == 134
    assert "FATAL: Cannot find the corresponding input_layer name(x) in --input_layer as " in result.stderr
    missing_delim = _run(
        adb_device,
        [f"--graph={pushed}", "--input_layer=x", "--input_layer_shape=1", "--input_layer_value_files=x"],
    )
    assert missing_delim.returncode == 1
    assert "ERROR: x doesn't contain any delimiter." in missing_delim.stderr


def test_output_file_holds_the_raw_output_of_the_given_input(
    adb_device: adbutils.AdbDevice, pushed: str, fp32_bundle: Path
) -> None:
    segment = read_manifest(fp32_bundle).segments[1]
    name = input_tensor_name(str(fp32_bundle / segment.file), segment.sha256)
    x = np.random.default_rng(5).standard_normal(segment.input.shape).astype(np.float32)
    source, target = f"{REMOTE}/x.bin", f"{REMOTE}/y.bin"
    adb_device.sync.push(x.tobytes(), source)
    result = _run(
        adb_device,
        [
            f"--graph={pushed}",
            "--num_runs=1",
            "--warmup_runs=0",
            "--min_secs=0",
            "--warmup_min_secs=0",
            *_input_flags(name, segment.input.shape, source),
            f"--output_filepath={target}",
        ],
    )
    assert result.returncode == 0, result.stderr
    expected = SegmentRunner(fp32_bundle / segment.file).run(x)
    assert adb_device.sync.read_bytes(target) == expected.tobytes()
    assert "Tensor #" not in result.stderr  # the flags name the model's own input: no mismatch warning


def test_help_lists_the_split_flags_in_upstreams_usage_format(adb_device: adbutils.AdbDevice) -> None:
    result = _run(adb_device, ["--help"])
    assert result.returncode == 1
    assert f"ERROR: usage: {BINARY} <flags>\nFlags:\n" in result.stderr
    rows = [line for line in result.stderr.splitlines() if line.startswith("\t--")]
    row = next(line for line in rows if line.startswith("\t--output_filepath="))
    assert row.split("\t")[2:4] == ["string", "optional"]
    assert any(line.startswith("\t--num_runs=50 ") and "\tint32\t" in line for line in rows)
    assert supports_split_flags(result.stderr)
    old_build = "usage: benchmark_model <flags>\nFlags:\n\t--graph=\tstring\toptional\tgraph file name\n"
    assert not supports_split_flags(old_build)
