"""On-device streaming PCA: the GHA update step runs on the emulated phone through the chain runner."""

from __future__ import annotations

import numpy as np

from harness.devices.adb import AdbDevice
from harness.profiling.stream_training import train_on_device
from models.stream_update import export_update_step
from models.streaming_pca import FixedPointStreamingPCA, StreamConfig, StreamingPCA, feature_batches


def test_stream_update_trains_on_the_emulated_device(emulated_device, tmp_path):
    k, channels, batch = 3, 8, 16
    bundle = export_update_step(k, channels, batch, tmp_path / "step")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((batch * 4, channels)) * np.linspace(2, 0.5, channels)
    device = AdbDevice(emulated_device.serial, power_spec=emulated_device.spec)
    trainer = StreamingPCA(channels, StreamConfig(k=k, batch_size=batch))
    run = train_on_device(device, bundle, trainer, feature_batches(vectors, batch))
    assert run.updates == 4 and trainer.updates == 4
    assert run.state.shape == (1 + k, channels)
    assert run.max_abs_diff < 1e-4  # the phone computed the host trainer's weights
    assert run.compute_ms > 0 and run.wall_ms > run.compute_ms
    assert run.energy_mj > 0 and run.updates_per_s > 0


def test_stream_fixed_point_update_trains_on_the_emulated_device(emulated_device, tmp_path):
    """The int32 step (int16 weights, shifts, no float) gives the host's fixed-point weights bit for bit."""
    k, channels, batch = 2, 6, 16
    bundle = export_update_step(k, channels, batch, tmp_path / "int-step", fixed_point=True)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((batch * 3, channels)) * np.linspace(2, 0.5, channels)
    device = AdbDevice(emulated_device.serial, power_spec=emulated_device.spec)
    trainer = FixedPointStreamingPCA(channels, StreamConfig(k=k, batch_size=batch))
    run = train_on_device(device, bundle, trainer, feature_batches(vectors, batch))
    assert run.state.dtype == np.int32 and run.updates == 3
    assert run.max_abs_diff == 0.0
    assert np.array_equal(run.state[1:], trainer.weights_int16)
