"""Train the cut's streaming PCA on a device: the exported GHA update step, one mini-batch per call.

The device holds nothing but the step model; every call sends the state (running mean and the k×C
weights) with one feature batch and gets the new state back (``Device.run_chain``: the chain runner on
the emulated device). A host :class:`~models.streaming_pca.StreamingPCA` runs the same updates beside
it, which gives the rates of every step and checks that the device computed the same weights.

On a phone in use the feature batch comes from the head that runs there; here the host sends the
features it extracted, so the measured wall time per update includes that transfer and the adb round
trip, while the compute time and the power-model energy are the step's own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import UsageError
from models.stream_update import step_input

if TYPE_CHECKING:
    from harness.devices.base import Device
    from models.streaming_pca import FixedPointStreamingPCA, StreamingPCA

__all__ = ["OnDeviceTraining", "train_on_device"]


@dataclass
class OnDeviceTraining:
    """What ``updates`` GHA steps on a device took; times and energy are per update, medians."""

    device: str
    updates: int
    compute_ms: float  # the step's own time on the device (the runner's timing, warm)
    wall_ms: float  # one whole call: push state + batch, run, pull state (adb round trip included)
    energy_mj: float  # compute energy above idle, from the device's power model
    max_abs_diff: float  # largest |device state - host trainer state| after the last update (int: LSBs)
    state: np.ndarray  # (1 + k, C): the running mean, then the learnt weights (float32, or int32 Q1.14)

    @property
    def updates_per_s(self) -> float:
        """Updates per second of the step's compute (what a phone keeping the model loaded reaches)."""
        return 1000.0 / self.compute_ms if self.compute_ms > 0 else float("nan")


def train_on_device(
    device: Device,
    bundle_dir: Path,
    trainer: StreamingPCA | FixedPointStreamingPCA,
    batches: Iterable[np.ndarray],
) -> OnDeviceTraining:
    """Run one device update per batch of ``batches`` (each ``(B, C)``), from ``trainer``'s current state.

    ``bundle_dir`` holds the step exported for ``trainer``'s kind (float, or ``fixed_point=True``).
    ``trainer`` is advanced alongside (it supplies each step's rates and the reference state).
    """
    state = trainer.state  # (1 + k, C)
    compute: list[float] = []
    wall: list[float] = []
    energy: list[float] = []
    for batch in batches:
        packed = step_input(trainer, state, batch)
        start = time.perf_counter()
        run = device.run_chain(bundle_dir, [0], packed)
        wall.append((time.perf_counter() - start) * 1e3)
        compute.append(sum(run.segment_ms))
        energy.append(run.energy_mj)
        state = np.asarray(run.output, state.dtype).reshape(state.shape)
        trainer.update(batch)
    if not compute:
        raise UsageError("an empty feature stream: give at least one feature batch to train on the device")
    return OnDeviceTraining(
        device=getattr(device, "serial", type(device).__name__),
        updates=len(compute),
        compute_ms=statistics.median(compute),
        wall_ms=statistics.median(wall),
        energy_mj=statistics.median(energy),
        max_abs_diff=float(np.max(np.abs(state.astype(np.float64) - trainer.state))),
        state=state,
    )
