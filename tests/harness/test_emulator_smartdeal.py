"""jointdnn_sd_rebuild on the emulated device: the artifact becomes the exported segment files, bit for bit."""

from __future__ import annotations

from pathlib import Path

import adbutils
import numpy as np
import pytest

from harness.emulator import EmulatedDevice

REMOTE = "/data/local/tmp"


@pytest.fixture(scope="module")
def sd_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny SD model exported with its artifact: (bundle dir, artifact file)."""
    tmp_path = tmp_path_factory.mktemp("sd")
    import keras
    from keras import layers

    from models.smartdeal import SmartDealConfig, to_smartdeal
    from models.smartdeal_export import export_smartdeal

    keras.utils.set_random_seed(2)
    x = inp = keras.Input((8, 8, 3), name="input")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(4, name="fc")(x)
    sd = to_smartdeal(keras.Model(inp, x, name="tiny"), SmartDealConfig(threshold=0.1))
    export_smartdeal(
        sd, tmp_path / "bundle", tmp_path / "tiny.sdw", cuts=["r1"], cache_dir=tmp_path / "cache"
    )
    return tmp_path / "bundle", tmp_path / "tiny.sdw"


def test_rebuild_program_writes_the_exported_segments(
    adb_device: adbutils.AdbDevice, emulated_device: EmulatedDevice, sd_export: tuple[Path, Path]
) -> None:
    bundle, artifact = sd_export
    adb_device.sync.push(artifact, f"{REMOTE}/sd/tiny.sdw")
    before = emulated_device.battery.energy_mj(above_idle=True)
    result = adb_device.shell2(
        f"{REMOTE}/jointdnn_sd_rebuild --artifact={REMOTE}/sd/tiny.sdw --out_dir={REMOTE}/sd", v2=True
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    from models.smartdeal_artifact import read_artifact

    header, _ = read_artifact(artifact.read_bytes())
    files = [seg["file"] for seg in header["segments"]]  # the segments holding SD kernels
    assert lines["segments"].split(",") == files and "segment_000.tflite" in files
    assert int(lines["artifact_bytes"]) == artifact.stat().st_size
    assert float(lines["rebuild_ms"]) > 0
    assert emulated_device.battery.energy_mj(above_idle=True) > before  # charged to the battery
    for file in files:
        assert adb_device.sync.read_bytes(f"{REMOTE}/sd/{file}") == (bundle / file).read_bytes()
    corrupt = bytearray(artifact.read_bytes())
    corrupt[-5] ^= 0xFF  # inside the last blob
    adb_device.sync.push(bytes(corrupt), f"{REMOTE}/sd/bad.sdw")
    bad = adb_device.shell2(
        f"{REMOTE}/jointdnn_sd_rebuild --artifact={REMOTE}/sd/bad.sdw --out_dir={REMOTE}/sd", v2=True
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert np.isfinite(float(lines["rebuilt_bytes"]))


def test_chain_runner_charges_only_the_weight_bytes_read(
    adb_device: adbutils.AdbDevice, emulated_device: EmulatedDevice, sd_export: tuple[Path, Path]
) -> None:
    import io
    import json

    from models.smartdeal_artifact import read_artifact

    artifact = sd_export[1]
    adb_device.sync.push(artifact, f"{REMOTE}/sd2/tiny.sdw")
    assert (
        adb_device.shell2(
            f"{REMOTE}/jointdnn_sd_rebuild --artifact={REMOTE}/sd2/tiny.sdw --out_dir={REMOTE}/sd2"
        ).returncode
        == 0
    )
    header, _ = read_artifact(artifact.read_bytes())
    seg = header["segments"][0]
    meta = json.loads(adb_device.sync.read_bytes(f"{REMOTE}/sd2/{seg['file']}.sdmeta"))
    assert meta["dense_weight_bytes"] == sum(4 * layer["out"] * layer["fan_in"] for layer in seg["layers"])
    assert 0 < meta["read_weight_bytes"] < meta["dense_weight_bytes"]
    # A sidecar claiming 1e12 saved bytes: 1e12 B x 160 pJ/B = 160 J less than the compute power alone.
    big = {"dense_weight_bytes": 1e12, "read_weight_bytes": 0}
    adb_device.sync.push(json.dumps(big).encode(), f"{REMOTE}/sd2/{seg['file']}.sdmeta")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 8, 8, 3), np.float32))
    adb_device.sync.push(buffer.getvalue(), f"{REMOTE}/sd2/in.npy")
    before = emulated_device.battery.energy_mj(above_idle=True)
    run = adb_device.shell2(
        f"{REMOTE}/jointdnn_chain_runner --graphs={REMOTE}/sd2/{seg['file']} --input={REMOTE}/sd2/in.npy "
        f"--output={REMOTE}/sd2/out.npy",
        v2=True,
    )
    assert run.returncode == 0, run.stderr
    spent = emulated_device.battery.energy_mj(above_idle=True) - before
    assert spent == pytest.approx(-160_000.0, abs=1_000.0)
