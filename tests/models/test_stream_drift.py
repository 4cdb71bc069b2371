"""Drift: the streaming reduction recovers after the distribution changes; a once-fitted PCA does not."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import UsageError
from models.stream_drift import run_drift, write_drift_plot


def _distribution(rng: np.random.Generator, basis: np.ndarray, n: int) -> np.ndarray:
    scales = np.geomspace(3.0, 0.1, basis.shape[0])
    return ((rng.standard_normal((n, basis.shape[0])) * scales) @ basis).astype(np.float32)


def test_stream_tracks_a_drifting_distribution(tmp_path):
    rng = np.random.default_rng(0)
    channels = 10
    first, _ = np.linalg.qr(rng.standard_normal((channels, channels)))
    second, _ = np.linalg.qr(rng.standard_normal((channels, channels)))  # a new principal subspace
    before = (_distribution(rng, first.T, 4096), _distribution(rng, first.T, 1024))
    after = (_distribution(rng, second.T, 8192) + 0.5, _distribution(rng, second.T, 1024) + 0.5)
    result = run_drift(before, after, 3, batch_size=32, checkpoint_every=8)
    recovered = result.recovered_after()
    assert recovered is not None and recovered <= 4096  # within half of the new distribution's stream
    stream, once, refit = result.final()
    assert stream <= 1.1 * refit
    assert once > 1.5 * refit  # the once-fitted PCA stays worse
    assert result.samples[-1] == 4096 + 8192 and result.change_at == 4096
    png = write_drift_plot(result, tmp_path / "drift.png")
    assert png.stat().st_size > 1000


def test_stream_drift_refuses_mismatched_or_empty_streams():
    x = np.zeros((64, 4), np.float32)
    with pytest.raises(UsageError, match="channels"):
        run_drift((x, x), (np.zeros((64, 5), np.float32),) * 2, 2)
    with pytest.raises(UsageError, match="empty feature stream"):
        run_drift((x[:0], x), (x, x), 2)
