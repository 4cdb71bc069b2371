"""jointdnn_sd_rebuild on the emulated device: the artifact becomes the exported segment files, bit for bit."""

from __future__ import annotations

from pathlib import Path

import adbutils
import numpy as np

from harness.emulator import EmulatedDevice

REMOTE = "/data/local/tmp"


def _sd_bundle(tmp_path: Path) -> tuple[Path, Path, list[str]]:
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
    manifest, _ = export_smartdeal(
        sd, tmp_path / "bundle", tmp_path / "tiny.sdw", cache_dir=tmp_path / "cache"
    )
    return tmp_path / "bundle", tmp_path / "tiny.sdw", [s.file for s in manifest.segments]


def test_rebuild_program_writes_the_exported_segments(
    adb_device: adbutils.AdbDevice, emulated_device: EmulatedDevice, tmp_path: Path
) -> None:
    bundle, artifact, files = _sd_bundle(tmp_path)
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
