"""``jointdnn models list|inspect`` and ``jointdnn export``: output, CSV, bundles and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from models.bundle import read_manifest
from models.zoo import MODEL_NAMES


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "models", "list")
    assert code == 0 and out.split() == list(MODEL_NAMES)


def test_inspect_prints_the_table_and_writes_csv(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "small.csv"
    code, out, _ = _run(capsys, "models", "inspect", "small_cnn", "--csv", str(csv_path))
    assert code == 0
    assert "9 segments, 8 cut points" in out and "block2_relu" in out
    table = pd.read_csv(csv_path)
    assert list(table["segment"]) == list(range(9))
    assert table.loc[0, "out_bytes"] == 32 * 32 * 16 * 4 and table["params"].sum() == 90170


def test_export_writes_a_bundle_and_the_second_run_hits_the_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = (
        "export",
        "small_cnn",
        "--quant",
        "int8",
        "--out",
        str(tmp_path / "b"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "9 segments" in out and "10 converted, 0 from cache" in out
    assert read_manifest(tmp_path / "b", verify_hashes=True).quant == "int8"
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "0 converted, 10 from cache" in out


def _one_line_error(code: int, err: str, expected_code: int = 2) -> str:
    assert code == expected_code
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def test_unknown_model_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(*_run(capsys, "models", "inspect", "resnet5")[::2])
    assert "unknown model 'resnet5'" in line and all(name in line for name in MODEL_NAMES)


def test_layer_that_is_not_a_cut_says_why_and_names_nearest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = _one_line_error(
        *_run(capsys, "export", "small_cnn", "--cut", "block3_bn", "--out", str(tmp_path / "b"))[::2]
    )
    assert "'block3_bn'" in line and "ReLU 'block3_relu' that TFLite fuses" in line
    assert "nearest valid cuts: 'block2_pool' and 'block3_relu'" in line


def test_corrupt_model_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    path.write_bytes(b"\x00" * 64)
    line = _one_line_error(*_run(capsys, "models", "inspect", str(path))[::2])
    assert str(path) in line and "not a valid .keras file" in line


def test_unwritable_cache_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = _run(
        capsys, "export", "small_cnn", "--out", str(tmp_path / "b"), "--cache-dir", str(blocker / "c")
    )
    line = _one_line_error(code, err, expected_code=1)
    assert "artifact cache" in line and "not writable" in line


def test_real_process_prints_one_line_and_no_tensorflow_noise(tmp_path: Path) -> None:
    path = tmp_path / "broken.keras"
    path.write_bytes(b"junk")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "models", "inspect", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error:"), result.stderr
