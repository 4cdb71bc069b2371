"""``jointdnn butterfly``: the table it writes, and one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.cli.butterfly_cmd import parse_channels
from models.errors import UsageError


def _image_folder(root):
    """Two classes of 16 RGB images each (dark vs bright squares with noise): a user's data set."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(16):
            pixels = rng.integers(0, 60, (32, 32, 3)) + 180 * label
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_butterfly_command_on_an_image_folder_writes_csv_and_plot_with_stream_variant(tmp_path, capsys):
    out = tmp_path / "report"
    folder = _image_folder(tmp_path / "shapes")
    code = main(
        ["butterfly", "small_cnn", "--cut", "block2_pool", "--channels", "8", "--dataset", str(folder),
         "--base-epochs", "2", "--epochs", "1", "--no-latency", "--streaming", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    table = pd.read_csv(out / "small_cnn-block2_pool.csv")
    assert (out / "small_cnn-block2_pool.png").stat().st_size > 1000
    assert list(table.variant) == ["base", "butterfly", "pca", "stream"]
    base, butterfly, pca = (table.iloc[i] for i in range(3))
    assert base.cut_bytes == 8 * 8 * 32 * 4 and base.ratio == 1.0 and base.accuracy_delta_pts == 0.0
    assert butterfly.cut_bytes == pca.cut_bytes == 8 * 8 * 8 and butterfly.ratio == 16.0
    assert butterfly.cut_layer == "butterfly_reduce" and pca.cut_layer == "pca_reduce"
    assert 0 < butterfly.cut_bytes_zstd <= butterfly.cut_bytes + 64
    assert butterfly.accuracy_delta_pts == pytest.approx(100 * (butterfly.accuracy - base.accuracy))
    assert not any(math.isfinite(v) for v in table.device_ms)  # --no-latency: not measured
    stream = table.iloc[3]  # the reduction learnt by fixed-point streaming GHA, deployed like the PCA
    assert stream.cut_layer == "pca_reduce" and stream.cut_bytes == pca.cut_bytes and stream.channels == 8
    assert abs(stream.accuracy - pca.accuracy) <= 0.15  # a 7-image test set: one image is 0.14
    assert "butterfly" in capsys.readouterr().out


def test_butterfly_command_errors_are_one_line(capsys):
    assert main(["butterfly", "small_cnn", "--cut", "block2_bn", "--channels", "4"]) == 2
    err = capsys.readouterr().err
    assert "not a cut point" in err and "Traceback" not in err
    assert main(["butterfly", "small_cnn", "--cut", "block2_pool", "--dataset", "/no/such/dir"]) == 2
    assert "unknown data set" in capsys.readouterr().err


def test_parse_channels():
    assert parse_channels("2,4, 8,16") == [2, 4, 8, 16]
    for bad in ("", "a", "4,-2", "0"):
        with pytest.raises(UsageError):
            parse_channels(bad)
