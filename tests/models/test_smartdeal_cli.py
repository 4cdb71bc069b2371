"""``jointdnn smartdeal``: the table it writes (on a small image folder), and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.cli.smartdeal_cmd import parse_thresholds
from models.errors import UsageError


def _image_folder(root):
    """Two classes of 12 RGB images each (dark vs bright squares with noise)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 60, (32, 32, 3)) + 180 * label
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.mark.slow
def test_smartdeal_command_writes_csv_and_plot(tmp_path):
    out = tmp_path / "report"
    folder = _image_folder(tmp_path / "shapes")
    code = main(
        ["smartdeal", "small_cnn", "--cut", "block2_pool", "--threshold", "0.2", "--dataset", str(folder),
         "--base-epochs", "1", "--epochs", "1", "--no-int8", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    table = pd.read_csv(out / "small_cnn-block2_pool.csv")
    assert (out / "small_cnn-block2_pool.png").stat().st_size > 1000
    assert list(table.method) == ["fp32", "sd"]
    fp32, sd = table.iloc[0], table.iloc[1]
    # Only block1/block2 convs are decomposed: 432 + 4608 weights (+ biases), fp32 = 4 bytes each.
    assert fp32.weight_bytes == 4 * (432 + 16) + 4 * (4608 + 32)
    assert sd.weight_bytes < fp32.weight_bytes / 4 and 0 < sd.density < 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "1.5"], "--threshold must be in [0, 1)"),
        (["--threshold", "x"], "comma-separated numbers"),
        (["--basis", "5"], "basis size 5 does not divide the fan-in 27 of layer 'block1_conv'"),
        (["--cut", "block1_bn"], "is not a cut point"),
    ],
)
def test_bad_input_is_one_line(args, message, capsys):
    code = main(["smartdeal", "small_cnn", "--epochs", "0", "--base-epochs", "0", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_parse_thresholds():
    assert parse_thresholds("0.1, 0.2") == [0.1, 0.2]
    with pytest.raises(UsageError):
        parse_thresholds("")
